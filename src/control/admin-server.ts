// The operator's side door into a running control server: HTTP on a unix
// socket in the state dir, mode 0600, so only whoever owns the state dir (the
// same person who can read the database) administers the network.
import type { Server } from 'node:http';
import { closeUnix, listenUnix } from '../util/unix-http.js';
import { deleteNode, expireNode, listNodes, newAuthKey } from './admin-ops.js';
import { guardConnections, type ConnectionLimits } from './connections.js';
import { readJson, sendError, sendJson } from './http-util.js';
import { ControlError } from './protocol.js';
import type { AuthKeyOptions } from './authkeys.js';
import { addDnsRecord, addDnsRoute, removeDnsRecord, removeDnsRoute, showDns } from './dns.js';
import type { Registry } from './registry.js';

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
          const body = req.method === 'POST' ? await readJson(req) : {};
          const ref = url.searchParams.get('node') ?? '';
          const route = `${req.method} ${url.pathname}`;
          if (route === 'GET /admin/nodes') return sendJson(res, 200, listNodes(this.registry, this.online));
          if (route === 'POST /admin/nodes/delete') {
            const n = deleteNode(this.registry, ref);
            this.endStreams(n.id, 'NODE_UNKNOWN');
            this.changed();
            return sendJson(res, 200, n);
          }
          if (route === 'POST /admin/nodes/expire') {
            const n = expireNode(this.registry, ref);
            this.endStreams(n.id, 'NODE_EXPIRED');
            this.changed();
            return sendJson(res, 200, n);
          }
          if (route === 'POST /admin/authkeys') return sendJson(res, 200, newAuthKey(this.registry, parseAuthKeyOptions(body)));
          if (route === 'GET /admin/dns') return sendJson(res, 200, showDns(this.registry));
          const dnsChange = DNS_CHANGES.get(route);
          if (dnsChange) {
            const out = dnsChange(this.registry, stringFields(body));
            this.changed();
            return sendJson(res, 200, out);
          }
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

/** The body of POST /admin/authkeys: two optional booleans and an optional positive lifetime in ms. */
function parseAuthKeyOptions(raw: unknown): AuthKeyOptions {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ControlError('BAD_REQUEST', 'auth key options must be a JSON object');
  const o = raw as Record<string, unknown>;
  for (const k of ['reusable', 'ephemeral'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new ControlError('BAD_REQUEST', `${k} must be true or false`);
  }
  const e = o.expiryMs;
  if (e !== undefined && e !== null && (typeof e !== 'number' || !Number.isSafeInteger(e) || e <= 0)) {
    throw new ControlError('BAD_REQUEST', 'expiryMs must be null or a positive whole number of milliseconds');
  }
  return { reusable: o.reusable === true, ephemeral: o.ephemeral === true, expiryMs: (e as number | null | undefined) ?? null };
}

/** The string fields of an admin request's JSON body (lists of strings joined with commas); anything else is refused. */
function stringFields(raw: unknown): Record<string, string | undefined> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ControlError('BAD_REQUEST', 'the request body must be a JSON object');
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string') out[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = v.join(',');
    else throw new ControlError('BAD_REQUEST', `${k} must be a string`);
  }
  return out;
}

const need = (f: Record<string, string | undefined>, k: string): string => {
  const v = f[k];
  if (v === undefined) throw new ControlError('BAD_REQUEST', `${k} is missing`);
  return v;
};

/** The admin socket's DNS changes: each pushes new maps to every node. */
const DNS_CHANGES = new Map<string, (r: Registry, f: Record<string, string | undefined>) => unknown>([
  ['POST /admin/dns/routes', (r, f) => addDnsRoute(r, need(f, 'domain'), need(f, 'resolvers').split(','))],
  ['POST /admin/dns/routes/remove', (r, f) => removeDnsRoute(r, need(f, 'domain'))],
  ['POST /admin/dns/records', (r, f) => addDnsRecord(r, need(f, 'name'), need(f, 'address'))],
  ['POST /admin/dns/records/remove', (r, f) => removeDnsRecord(r, need(f, 'name'), f.address)],
]);
