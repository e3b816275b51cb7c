// `meshctl control admin token …`: through the running server's admin socket,
// else on the database directly, as for the other admin commands.
import { run } from '../admin-client.js';
import { createAdminToken, listAdminTokens, revokeAdminToken, type AdminTokenRow } from './tokens.js';

export const adminTokens = {
  create: (dir: string, name?: string): Promise<AdminTokenRow & { token: string }> =>
    run(dir, 'POST', '/admin/tokens', { name }, (r) => createAdminToken(r.store, name), true),
  list: (dir: string): Promise<AdminTokenRow[]> => run(dir, 'GET', '/admin/tokens', undefined, (r) => listAdminTokens(r.store)),
  revoke: (dir: string, id: string): Promise<{ id: string }> => run(dir, 'POST', '/admin/tokens/revoke', { id }, (r) => revokeAdminToken(r.store, id)),
};
