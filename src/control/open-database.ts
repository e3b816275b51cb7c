// Opening the control server's database at start, with the checks that keep
// a lost or damaged database from turning silently into a new, empty network.
import { existsSync, renameSync } from '../util/cjs.js';
import { DatabaseError, SqliteStore } from './sqlite-store.js';
import { stateFiles } from './state-dir.js';

/** The state dir cannot be used as it is; the message says why and the way out. */
export class StateError extends Error {
  override readonly name = 'StateError';
}

/**
 * Opens the state dir's database. A missing or empty database beside an
 * existing control key means the network's data is gone (a failed restore, a
 * wrong volume): starting an empty network there would silently orphan every
 * node, so it is refused unless `fresh` says so. A damaged database is
 * refused too; with `fresh` it is kept aside as control.db.broken-TIME and a
 * new one is made.
 */
export function openStateDatabase(dir: string, fresh: boolean, log: (msg: string) => void = () => {}): SqliteStore {
  const f = stateFiles(dir);
  const networkExisted = existsSync(f.controlKey);
  try {
    return new SqliteStore(f.db, { mustExist: networkExisted && !fresh });
  } catch (err) {
    if (!(err instanceof DatabaseError)) throw err;
    if (err.kind === 'missing' || err.kind === 'empty') {
      throw new StateError(
        `${err.message}, but ${f.controlKey} exists (this server has run a network before): ` +
          `restore ${f.db} from a backup, or start a new, empty network with --fresh`,
      );
    }
    if (err.kind === 'in-use') throw new StateError(err.message);
    if (err.kind === 'newer') throw new StateError(`${err.message}: run a newer meshctl, or restore a backup made by this version`);
    if (!fresh) throw new StateError(`${err.message}: restore it from a backup, or start afresh with --fresh (which keeps it aside)`);
    const aside = `${f.db}.broken-${Date.now()}`;
    renameSync(f.db, aside);
    // its journal or WAL goes with it: committed writes may still be only in the WAL
    for (const side of ['-journal', '-wal']) if (existsSync(`${f.db}${side}`)) renameSync(`${f.db}${side}`, `${aside}${side}`);
    log(`${err.message}; kept it as ${aside} and started a new, empty database (--fresh)`);
    return new SqliteStore(f.db);
  }
}
