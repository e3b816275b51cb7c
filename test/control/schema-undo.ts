// SQL that takes a database back to an older schema, for the migration tests.

/** What migration 7 (the change log) added, taken out again: a database as schema 6 left it. */
export const UNDO_CHANGE_LOG = 'DROP TABLE change_log; DROP TABLE change_counter;';

/** What migration 6 (identity) added, taken out again: a database as schema 5 left it. */
export const UNDO_IDENTITY = `DROP INDEX nodes_user; DROP INDEX authkeys_user; DROP TABLE users;
  ALTER TABLE authkeys DROP COLUMN user_name; ALTER TABLE authkeys DROP COLUMN tags; ALTER TABLE authkeys DROP COLUMN revoked;
  ALTER TABLE nodes DROP COLUMN user_name; ALTER TABLE nodes DROP COLUMN tags; ALTER TABLE nodes DROP COLUMN pending;`;
