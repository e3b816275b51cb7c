// The operator's side door into a running control server: HTTP on a unix
// socket in the state dir, mode 0600, so only whoever owns the state dir (the
// same person who can read the database) administers the network.
import type { Server } from 'node:http';
import { closeUnix, listenUnix } from '../util/unix-http.js';
import { deleteNode, expireNode, listNodes, newAuthKey, type AuthKeyRequest } from './admin-ops.js';
import { approveNode, createUser, deleteUser, listAuthKeys, listUsers, revokeAuthKey } from './identity.js';
import { guardConnections, type ConnectionLimits } from './connections.js';
import { readJson, sendError, sendJson } from './http-util.js';
import { ControlError } from './protocol.js';
import { addDnsRecord, addDnsRoute, removeDnsRecord, removeDnsRoute, showDns } from './dns.js';
import type { Registry } from './registry.js';
import { approveRoute, listRoutes, loadProtectedTargets, protectedAddresses, rejectRoute } from './routes.js';
import { addDevice, listDevices, removeDevice } from './devices.js';
import { checkPolicy, getPolicy, setPolicy } from './policy.js';
import { autoApprove } from './auto-approve.js';
import { MAX_POLICY_BYTES } from '../policy/types.js';
import { adminTokenRoute } from './web/tokens.js';

/** A policy set over the socket: the file as a JSON string (newlines and quotes escaped may double it), plus the object around it. */
const MAX_POLICY_BODY_BYTES = 2 * MAX_POLICY_BYTES + 1024;

export class AdminServer {
  private server: Server | null = null;

  constructor(
    private readonly path: string,
    private readonly registry: Registry,
    private readonly changed: () => void,
    private readonly online: (id: number) => boolean,
    private readonly endStreams: (id: number, reason: 'NODE_UNKNOWN' | 'NODE_EXPIRED') => void,
    private readonly limits: ConnectionLimits,
  ) {}

  async start(): Promise<void> {
    this.server = await listenUnix(this.path, 0o600, (req, res) => {
      void (async () => {
        try {
          const url = new URL(req.url ?? '/', 'http://admin');
          const body = req.method === 'POST' ? await readJson(req, url.pathname.startsWith('/admin/policy') ? MAX_POLICY_BODY_BYTES : undefined) : {};
          const ref = url.searchParams.get('node') ?? '';
          const route = `${req.method} ${url.pathname}`;
          if (route === 'GET /admin/nodes') return sendJson(res, 200, listNodes(this.registry, this.online));
          if (route === 'POST /admin/nodes/delete') {
            const n = await deleteNode(this.registry, ref);
            this.endStreams(n.id, 'NODE_UNKNOWN');
            this.changed();
            return sendJson(res, 200, n);
          }
          if (route === 'POST /admin/nodes/expire') {
            const n = await expireNode(this.registry, ref);
            this.endStreams(n.id, 'NODE_EXPIRED');
            this.changed();
            return sendJson(res, 200, n);
          }
          if (route === 'POST /admin/authkeys') return sendJson(res, 200, await newAuthKey(this.registry, parseAuthKeyOptions(body)));
          if (route === 'GET /admin/policy') return sendJson(res, 200, await getPolicy(this.registry));
          if (route === 'POST /admin/policy/check') return sendJson(res, 200, summary(checkPolicy(str(fields(body), 'text'))));
          if (route === 'POST /admin/policy') {
            const out = await setPolicy(this.registry, str(fields(body), 'text'));
            this.changed();
            // what nodes advertise already may now be approved by the new autoApprovers
            void autoApprove(
              this.registry,
              this.registry.nodes().map((n) => n.id),
            )
              .then((lines) => lines.length && this.changed())
              .catch(() => {});
            return sendJson(res, 200, out);
          }
          if (route === 'GET /admin/authkeys') return sendJson(res, 200, await listAuthKeys(this.registry));
          // revoking changes no map: the nodes the key registered stay
          if (route === 'POST /admin/authkeys/revoke') return sendJson(res, 200, await revokeAuthKey(this.registry, str(fields(body), 'id')));
          if (route === 'GET /admin/users') return sendJson(res, 200, await listUsers(this.registry));
          if (route === 'POST /admin/users') return sendJson(res, 200, await createUser(this.registry, str(fields(body), 'name')));
          if (route === 'POST /admin/users/delete') {
            const o = fields(body);
            if (o.force !== undefined && typeof o.force !== 'boolean') throw new ControlError('BAD_REQUEST', 'force must be true or false');
            const out = await deleteUser(this.registry, str(o, 'name'), o.force === true);
            for (const id of out.deletedNodes) this.endStreams(id, 'NODE_UNKNOWN');
            if (out.deletedNodes.length > 0) this.changed();
            return sendJson(res, 200, out);
          }
          if (route === 'POST /admin/nodes/approve') {
            const n = await approveNode(this.registry, ref);
            this.changed();
            return sendJson(res, 200, n);
          }
          if (route === 'GET /admin/dns') return sendJson(res, 200, showDns(this.registry));
          if (route === 'GET /admin/routes') return sendJson(res, 200, listRoutes(this.registry, this.online));
          if (route === 'GET /admin/devices') return sendJson(res, 200, listDevices(this.registry));
          if (route === 'POST /admin/routes/approve') {
            const o = fields(body);
            const guard = await protectedAddresses(await loadProtectedTargets(this.registry.store));
            const out = await approveRoute(this.registry, str(o, 'node'), str(o, 'prefix'), guard);
            this.changed();
            return sendJson(res, 200, out);
          }
          const change = ROUTE_DEVICE_CHANGES.get(route);
          if (change) {
            const out = await change(this.registry, fields(body));
            this.changed();
            return sendJson(res, 200, out);
          }
          const dnsChange = DNS_CHANGES.get(route);
          if (dnsChange) {
            const out = await dnsChange(this.registry, fields(body));
            this.changed();
            return sendJson(res, 200, out);
          }
          const token = await adminTokenRoute(this.registry.store, route, body);
          if (token !== undefined) return sendJson(res, 200, token);
          throw new ControlError('BAD_REQUEST', `no ${route} here`);
        } catch (err) {
          sendError(res, err);
        }
      })();
    });
    guardConnections(this.server, this.limits);
  }

  async stop(): Promise<void> {
    await closeUnix(this.server, this.path);
    this.server = null;
  }
}

/** The body of POST /admin/authkeys: two optional booleans, an optional positive lifetime in ms, an optional user or tags. */
export function parseAuthKeyOptions(raw: unknown): AuthKeyRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ControlError('BAD_REQUEST', 'auth key options must be a JSON object');
  const o = raw as Record<string, unknown>;
  for (const k of ['reusable', 'ephemeral'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new ControlError('BAD_REQUEST', `${k} must be true or false`);
  }
  const e = o.expiryMs;
  if (e !== undefined && e !== null && (typeof e !== 'number' || !Number.isSafeInteger(e) || e <= 0)) {
    throw new ControlError('BAD_REQUEST', 'expiryMs must be null or a positive whole number of milliseconds');
  }
  const owner = { user: o.user === undefined ? undefined : str(o, 'user'), tags: o.tags === undefined ? undefined : strList(o, 'tags') };
  return { reusable: o.reusable === true, ephemeral: o.ephemeral === true, expiryMs: (e as number | null | undefined) ?? null, ...owner };
}

/** What a checked policy holds, as `policy check` reports it. */
export function summary(p: { acls: unknown[]; tests: unknown[] }): { acls: number; tests: number } {
  return { acls: p.acls.length, tests: p.tests.length };
}

/** The JSON object body of an admin request. */
function fields(raw: unknown): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ControlError('BAD_REQUEST', 'the request body must be a JSON object');
  return raw as Record<string, unknown>;
}

/** A string field; optional ones may be missing. */
function str(o: Record<string, unknown>, k: string): string;
function str(o: Record<string, unknown>, k: string, optional: true): string | undefined;
function str(o: Record<string, unknown>, k: string, optional = false): string | undefined {
  const v = o[k];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string') throw new ControlError('BAD_REQUEST', `${k} must be a string`);
  return v;
}

/** A list of strings (its length is checked by the operation). */
function strList(o: Record<string, unknown>, k: string): string[] {
  const v = o[k];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ControlError('BAD_REQUEST', `${k} must be a list of strings`);
  return v as string[];
}

/** The admin socket's DNS changes: each pushes new maps to every node. */
const DNS_CHANGES = new Map<string, (r: Registry, o: Record<string, unknown>) => unknown>([
  ['POST /admin/dns/routes', (r, o) => addDnsRoute(r, str(o, 'domain'), strList(o, 'resolvers'))],
  ['POST /admin/dns/routes/remove', (r, o) => removeDnsRoute(r, str(o, 'domain'))],
  ['POST /admin/dns/records', (r, o) => addDnsRecord(r, str(o, 'name'), str(o, 'address'))],
  ['POST /admin/dns/records/remove', (r, o) => removeDnsRecord(r, str(o, 'name'), str(o, 'address', true))],
]);

/** Route rejections and device changes: each pushes new maps to every node. */
const ROUTE_DEVICE_CHANGES = new Map<string, (r: Registry, o: Record<string, unknown>) => unknown>([
  ['POST /admin/routes/reject', (r, o) => rejectRoute(r, str(o, 'node'), str(o, 'prefix'))],
  ['POST /admin/devices', (r, o) => addDevice(r, str(o, 'name'), str(o, 'gateway'), str(o, 'publicKey'), str(o, 'endpoint', true))],
  ['POST /admin/devices/remove', (r, o) => removeDevice(r, str(o, 'device'))],
]);
