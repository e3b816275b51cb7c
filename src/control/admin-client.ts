// Runs an admin operation against the control server in `stateDir`: through
// its admin socket when it is running (so nodes hear of the change at once),
// else directly on its database.
import { request } from 'node:http';
import { existsSync } from '../util/cjs.js';
import { deleteNode, expireNode, listNodes, newAuthKey, type AdminNode, type AuthKeyRequest, type NewAuthKeyInfo } from './admin-ops.js';
import {
  approveNode,
  createUser,
  deleteUser,
  listAuthKeys,
  listUsers,
  revokeAuthKey,
  type AdminAuthKey,
  type AdminUser,
  type DeletedUser,
} from './identity.js';
import { addDnsRecord, addDnsRoute, removeDnsRecord, removeDnsRoute, showDns, type DnsShow } from './dns.js';
import { ControlError, type ErrorBody } from './protocol.js';
import { Registry } from './registry.js';
import { approveRoute, listRoutes, loadProtectedTargets, protectedAddresses, rejectRoute, type ApproveResult, type RouteRow } from './routes.js';
import { addDevice, listDevices, removeDevice, type AdminDevice, type DeviceConfigInfo } from './devices.js';
import { DatabaseError, SqliteStore } from './sqlite-store.js';
import { getPolicy, setPolicy, type PolicyShow } from './policy.js';
import { ensureStateDir, stateFiles } from './state-dir.js';

const ADMIN_TIMEOUT_MS = 10_000;

export function viaSocket<T>(socketPath: string, method: string, path: string, body?: unknown): Promise<T | 'no-server'> {
  return new Promise((resolve, reject) => {
    // agent: false: a kept-alive socket to a server that has since restarted would fail with EPIPE
    const req = request({ socketPath, method, path, agent: false, timeout: ADMIN_TIMEOUT_MS, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as T & Partial<ErrorBody>;
        if (res.statusCode === 200) resolve(parsed);
        else reject(new ControlError(parsed.error?.code ?? 'INTERNAL', parsed.error?.message ?? `admin socket answered ${res.statusCode}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`control server's admin socket ${socketPath} did not answer in ${ADMIN_TIMEOUT_MS / 1000}s`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve('no-server');
      else reject(err);
    });
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function direct<T>(stateDir: string, fn: (r: Registry) => T | Promise<T>, create = false): Promise<T> {
  const f = stateFiles(stateDir);
  if (create) ensureStateDir(stateDir);
  else if (!existsSync(f.db))
    throw new ControlError('BAD_REQUEST', `no control server state in ${stateDir}: start one with \`meshctl control serve --state-dir ${stateDir}\``);
  let store: SqliteStore;
  try {
    // a control key without a database is a lost network: do not make a new one here either
    store = new SqliteStore(f.db, { mustExist: existsSync(f.controlKey) });
  } catch (err) {
    if (!(err instanceof DatabaseError)) throw err;
    throw new ControlError('INTERNAL', `${err.message}: restore it from a backup, or start the server once with --fresh`);
  }
  try {
    return await fn(await Registry.open(store, { keyExpiryMs: null }));
  } finally {
    await store.close();
  }
}

/** Through the running server's admin socket, else on the state dir's database directly. */
export async function run<T>(
  stateDir: string,
  method: string,
  path: string,
  body: unknown,
  fallback: (r: Registry) => T | Promise<T>,
  create = false,
): Promise<T> {
  const r = await viaSocket<T>(stateFiles(stateDir).adminSocket, method, path, body);
  return r === 'no-server' ? direct(stateDir, fallback, create) : r;
}

/** Approval without a running server: the addresses to protect are resolved first, then the database is opened for the change. */
async function approveDirect(dir: string, node: string, prefix: string): Promise<ApproveResult> {
  const guard = await protectedAddresses(await direct(dir, (r) => loadProtectedTargets(r.store)));
  return direct(dir, (r) => approveRoute(r, node, prefix, guard));
}

export const admin = {
  listRoutes: (dir: string): Promise<RouteRow[]> => run(dir, 'GET', '/admin/routes', undefined, (r) => listRoutes(r, () => false)),
  approveRoute: async (dir: string, node: string, prefix: string): Promise<ApproveResult> => {
    const r = await viaSocket<ApproveResult>(stateFiles(dir).adminSocket, 'POST', '/admin/routes/approve', { node, prefix });
    return r === 'no-server' ? approveDirect(dir, node, prefix) : r;
  },
  rejectRoute: (dir: string, node: string, prefix: string) => run(dir, 'POST', '/admin/routes/reject', { node, prefix }, (r) => rejectRoute(r, node, prefix)),
  listDevices: (dir: string): Promise<AdminDevice[]> => run(dir, 'GET', '/admin/devices', undefined, (r) => listDevices(r)),
  addDevice: (dir: string, name: string, gateway: string, publicKey: string, endpoint?: string): Promise<DeviceConfigInfo> =>
    run(dir, 'POST', '/admin/devices', { name, gateway, publicKey, endpoint }, (r) => addDevice(r, name, gateway, publicKey, endpoint)),
  removeDevice: (dir: string, device: string) => run(dir, 'POST', '/admin/devices/remove', { device }, (r) => removeDevice(r, device)),
  listNodes: (dir: string): Promise<AdminNode[]> => run(dir, 'GET', '/admin/nodes', undefined, (r) => listNodes(r, () => false)),
  deleteNode: (dir: string, ref: string) => run(dir, 'POST', `/admin/nodes/delete?node=${encodeURIComponent(ref)}`, {}, (r) => deleteNode(r, ref)),
  expireNode: (dir: string, ref: string) => run(dir, 'POST', `/admin/nodes/expire?node=${encodeURIComponent(ref)}`, {}, (r) => expireNode(r, ref)),
  createAuthKey: (dir: string, o: AuthKeyRequest): Promise<NewAuthKeyInfo> => run(dir, 'POST', '/admin/authkeys', o, (r) => newAuthKey(r, o), true),
  listAuthKeys: (dir: string): Promise<AdminAuthKey[]> => run(dir, 'GET', '/admin/authkeys', undefined, (r) => listAuthKeys(r)),
  revokeAuthKey: (dir: string, id: string) => run(dir, 'POST', '/admin/authkeys/revoke', { id }, (r) => revokeAuthKey(r, id)),
  listUsers: (dir: string): Promise<AdminUser[]> => run(dir, 'GET', '/admin/users', undefined, (r) => listUsers(r)),
  createUser: (dir: string, name: string) => run(dir, 'POST', '/admin/users', { name }, (r) => createUser(r, name), true),
  deleteUser: (dir: string, name: string, force: boolean): Promise<DeletedUser> =>
    run(dir, 'POST', '/admin/users/delete', { name, force }, (r) => deleteUser(r, name, force)),
  approveNode: (dir: string, ref: string) => run(dir, 'POST', `/admin/nodes/approve?node=${encodeURIComponent(ref)}`, {}, (r) => approveNode(r, ref)),
  showDns: (dir: string): Promise<DnsShow> => run(dir, 'GET', '/admin/dns', undefined, (r) => showDns(r)),
  addDnsRoute: (dir: string, domain: string, resolvers: string[]) =>
    run(dir, 'POST', '/admin/dns/routes', { domain, resolvers }, (r) => addDnsRoute(r, domain, resolvers)),
  removeDnsRoute: (dir: string, domain: string) => run(dir, 'POST', '/admin/dns/routes/remove', { domain }, (r) => removeDnsRoute(r, domain)),
  addDnsRecord: (dir: string, name: string, address: string) =>
    run(dir, 'POST', '/admin/dns/records', { name, address }, (r) => addDnsRecord(r, name, address)),
  getPolicy: (dir: string): Promise<PolicyShow> => run(dir, 'GET', '/admin/policy', undefined, (r) => getPolicy(r)),
  setPolicy: (dir: string, text: string): Promise<{ acls: number; tests: number }> => run(dir, 'POST', '/admin/policy', { text }, (r) => setPolicy(r, text)),
  removeDnsRecord: (dir: string, name: string, address?: string) =>
    run(dir, 'POST', '/admin/dns/records/remove', { name, address }, (r) => removeDnsRecord(r, name, address)),
};
