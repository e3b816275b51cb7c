// `meshctl control admin token …`: through the running server's admin socket,
// else on the database directly (as admin-client.ts does for the other admin
// commands), awaiting the store while it is open.
import { existsSync } from '../../util/cjs.js';
import { viaSocket } from '../admin-client.js';
import { ControlError } from '../protocol.js';
import { DatabaseError, SqliteStore } from '../sqlite-store.js';
import { ensureStateDir, stateFiles } from '../state-dir.js';
import type { ControlStore } from '../store.js';
import { createAdminToken, listAdminTokens, revokeAdminToken, type AdminTokenRow } from './tokens.js';

async function onDatabase<T>(stateDir: string, fn: (s: ControlStore) => Promise<T>, create: boolean): Promise<T> {
  const f = stateFiles(stateDir);
  if (create) ensureStateDir(stateDir);
  else if (!existsSync(f.db))
    throw new ControlError('BAD_REQUEST', `no control server state in ${stateDir}: start one with \`meshctl control serve --state-dir ${stateDir}\``);
  let store: SqliteStore;
  try {
    store = new SqliteStore(f.db, { mustExist: existsSync(f.controlKey) });
  } catch (err) {
    if (!(err instanceof DatabaseError)) throw err;
    throw new ControlError('INTERNAL', `${err.message}: restore it from a backup, or start the server once with --fresh`);
  }
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

async function run<T>(dir: string, method: string, path: string, body: unknown, fallback: (s: ControlStore) => Promise<T>, create = false): Promise<T> {
  const r = await viaSocket<T>(stateFiles(dir).adminSocket, method, path, body);
  return r === 'no-server' ? onDatabase(dir, fallback, create) : r;
}

export const adminTokens = {
  create: (dir: string, name?: string): Promise<AdminTokenRow & { token: string }> =>
    run(dir, 'POST', '/admin/tokens', { name }, (s) => createAdminToken(s, name), true),
  list: (dir: string): Promise<AdminTokenRow[]> => run(dir, 'GET', '/admin/tokens', undefined, (s) => listAdminTokens(s)),
  revoke: (dir: string, id: string): Promise<{ id: string }> => run(dir, 'POST', '/admin/tokens/revoke', { id }, (s) => revokeAdminToken(s, id)),
};
