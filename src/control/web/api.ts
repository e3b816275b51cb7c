// The admin web: a JSON API under /admin/api/, a live event stream, and the
// admin page's static files, on the control server's HTTPS listener (and on
// --admin-listen). Every operation is the one the unix-socket admin runs, with
// its validation; this file adds who may call it:
//  - `Authorization: Bearer msadm-…` (an admin token; scripts, curl), or
//  - the session cookie the page gets by logging in with a token; a write
//    with the cookie also needs the session's CSRF token in X-CSRF-Token,
//    so a cookie a browser attaches on its own never authorizes a write.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ControlError } from '../protocol.js';
import { readJson, sendError, sendJson, RateLimitedError } from '../http-util.js';
import type { Registry } from '../registry.js';
import type { RelayRegion } from '../../netmap/types.js';
import { deleteNode, expireNode, listNodes, newAuthKey } from '../admin-ops.js';
import { approveNode, listAuthKeys, revokeAuthKey } from '../identity.js';
import { approveRoute, listRoutes, loadProtectedTargets, protectedAddresses, rejectRoute } from '../routes.js';
import { getPolicy, setPolicy } from '../policy.js';
import { autoApprove } from '../auto-approve.js';
import { parseAuthKeyOptions } from '../admin-server.js';
import { loadPolicy, PolicyError, PolicyTestError } from '../../policy/load.js';
import { MAX_POLICY_BYTES } from '../../policy/types.js';
import { SourceRateLimiter } from '../rate-limit.js';
import { sourceKey } from '../../util/per-source.js';
import { terminalSafe } from '../../util/text.js';
import { csrfMatches, MAX_SESSIONS, SESSION_LIFETIME_MS, SessionTable, type Session } from './sessions.js';
import { adminTokenExists, verifyAdminToken } from './tokens.js';
import { renameNode } from './rename.js';
import { EventHub, MAX_EVENT_STREAMS, EVENT_DEBOUNCE_MS, EVENT_KEEPALIVE_MS } from './events.js';
import { serveStatic, SECURITY_HEADERS } from './static.js';
import { qrSvg } from './qr.js';
import { controlOrigin, encodeJoin, MAX_JOIN_URLS } from '../../netmap/join-string.js';
import { certPin } from '../../crypto/spki-pin.js';

/** Logins one source may try at once, then one every 6 s: an operator mistyping a few times is not held up; guessing is. */
export const LOGIN_BURST_PER_SOURCE = 10;
export const LOGINS_PER_SEC_PER_SOURCE = 1 / 6;
/** Sources whose login buckets are kept; the least recently seen is dropped beyond it (~100 bytes each). */
const MAX_LOGIN_SOURCES = 10_000;
/** A policy sent as JSON (its text escaped may double it), plus the object around it. */
const MAX_POLICY_BODY_BYTES = 2 * MAX_POLICY_BYTES + 1024;
const COOKIE = 'msadm_session';

export interface AdminWebLimits {
  sessionLifetimeMs: number;
  maxSessions: number;
  loginBurstPerSource: number;
  loginsPerSecPerSource: number;
  maxEventStreams: number;
  eventDebounceMs: number;
  eventKeepaliveMs: number;
}

export interface AdminWebDeps {
  registry: Registry;
  /** something changed: maps are pushed (and event streams told) */
  changed: () => void;
  online: (id: number) => boolean;
  /** the path counts an online node last reported (direct, relayed peers), or null */
  paths: (id: number) => { direct: number; relay: number } | null;
  endStreams: (id: number, reason: 'NODE_UNKNOWN' | 'NODE_EXPIRED') => void;
  /** the relay regions in maps, with certFingerprint once control reached the relay */
  relays: () => RelayRegion[];
  /** the PEM certificate this server serves: a join string pins its public key */
  certPem: () => string;
  log: (msg: string) => void;
  limits?: Partial<AdminWebLimits>;
}

/** A refusal of the admin web itself: no credentials (401) or a write without its CSRF token (403). */
class AccessError extends Error {
  constructor(
    readonly status: 401 | 403,
    readonly code: 'UNAUTHORIZED' | 'FORBIDDEN',
    message: string,
  ) {
    super(message);
  }
}

/** Who made a request: a Bearer token, or a session (whose writes need the CSRF header). */
type Caller = { kind: 'bearer'; tokenId: string } | { kind: 'session'; session: Session };

type Body = Record<string, unknown>;
type Handler = (body: Body, url: URL) => Promise<unknown>;

export class AdminWeb {
  readonly sessions: SessionTable;
  private readonly loginRate: SourceRateLimiter;
  private readonly events: EventHub;
  private readonly limits: AdminWebLimits;
  private readonly get: Map<string, Handler>;
  private readonly post: Map<string, Handler>;

  constructor(private readonly d: AdminWebDeps) {
    this.limits = {
      sessionLifetimeMs: SESSION_LIFETIME_MS,
      maxSessions: MAX_SESSIONS,
      loginBurstPerSource: LOGIN_BURST_PER_SOURCE,
      loginsPerSecPerSource: LOGINS_PER_SEC_PER_SOURCE,
      maxEventStreams: MAX_EVENT_STREAMS,
      eventDebounceMs: EVENT_DEBOUNCE_MS,
      eventKeepaliveMs: EVENT_KEEPALIVE_MS,
      ...d.limits,
    };
    const l = this.limits;
    this.sessions = new SessionTable({ lifetimeMs: l.sessionLifetimeMs, maxSessions: l.maxSessions });
    this.loginRate = new SourceRateLimiter({ perSecond: l.loginsPerSecPerSource, burst: l.loginBurstPerSource, maxSources: MAX_LOGIN_SOURCES });
    this.events = new EventHub({ maxStreams: l.maxEventStreams, debounceMs: l.eventDebounceMs, keepaliveMs: l.eventKeepaliveMs });
    const r = d.registry;
    const node = (b: Body): string => str(b, 'node');
    this.get = new Map<string, Handler>([
      ['nodes', () => this.nodes()],
      ['authkeys', async () => await listAuthKeys(r)],
      ['routes', async () => await listRoutes(r, d.online)],
      ['policy', async () => await getPolicy(r)],
      ['relays', async () => this.relays()],
    ]);
    this.post = new Map<string, Handler>([
      ['nodes/rename', (b) => this.change(() => renameNode(r, node(b), str(b, 'name')))],
      ['nodes/approve', (b) => this.change(() => approveNode(r, node(b)))],
      [
        'nodes/expire',
        async (b) => {
          const n = await expireNode(r, node(b));
          d.endStreams(n.id, 'NODE_EXPIRED');
          d.changed();
          return n;
        },
      ],
      [
        'nodes/delete',
        async (b) => {
          const n = await deleteNode(r, node(b));
          d.endStreams(n.id, 'NODE_UNKNOWN');
          d.changed();
          return n;
        },
      ],
      ['authkeys', (b) => this.createKey(b)],
      // revoking changes no map: the nodes the key registered stay
      ['authkeys/revoke', async (b) => await revokeAuthKey(r, str(b, 'id'))],
      [
        'routes/approve',
        async (b) => {
          const guard = await protectedAddresses(await loadProtectedTargets(r.store));
          return this.change(() => approveRoute(r, str(b, 'node'), str(b, 'prefix'), guard));
        },
      ],
      ['routes/reject', (b) => this.change(() => rejectRoute(r, str(b, 'node'), str(b, 'prefix')))],
      ['policy/check', async (b) => checkPolicyText(str(b, 'text'))],
      ['policy', (b) => this.applyPolicy(str(b, 'text'))],
    ]);
  }

  /** Whether this request is the admin web's (the control server routes it here). */
  static owns(path: string): boolean {
    return path === '/admin' || path.startsWith('/admin/');
  }

  /** The network changed: event streams hear of it (debounced). */
  notify(): void {
    this.events.notify();
  }

  /** Ends every event stream (the server stops). */
  stop(): void {
    this.events.close();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    try {
      const url = new URL(req.url ?? '/', 'https://admin.invalid');
      const path = url.pathname;
      if (!path.startsWith('/admin/api/')) return serveStatic(req, res, path);
      res.setHeader('cache-control', 'no-store');
      const name = path.slice('/admin/api/'.length);
      const method = req.method ?? '';
      if (method === 'POST' && name === 'login') return await this.login(req, res);
      const caller = await this.authenticate(req);
      if (method === 'GET') {
        if (hasBody(req)) throw new ControlError('BAD_REQUEST', 'a GET request carries no body');
        if (name === 'events') return this.openEvents(req, res, caller);
        if (name === 'session') return sendJson(res, 200, sessionInfo(caller));
        const h = this.get.get(name);
        if (!h) throw new ControlError('NOT_FOUND', `no GET ${clip(path)} here`);
        return sendJson(res, 200, await h({}, url));
      }
      if (method !== 'POST') throw new ControlError('BAD_REQUEST', `no ${clip(method)} ${clip(path)} here: the admin API takes GET and POST`);
      if (caller.kind === 'session') {
        const header = req.headers['x-csrf-token'];
        if (!csrfMatches(caller.session, typeof header === 'string' ? header : undefined)) {
          throw new AccessError(403, 'FORBIDDEN', 'a write from the admin page needs its X-CSRF-Token header (GET /admin/api/session has it): log in again');
        }
      }
      if (name === 'logout') {
        if (caller.kind === 'session') this.sessions.delete(caller.session.id);
        res.setHeader('set-cookie', `${COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; Secure; SameSite=Strict`);
        return sendJson(res, 200, { ok: true });
      }
      const h = this.post.get(name);
      if (!h) throw new ControlError('NOT_FOUND', `no POST ${clip(path)} here`);
      const raw = await readJson(req, name.startsWith('policy') ? MAX_POLICY_BODY_BYTES : undefined);
      return sendJson(res, 200, await h(fields(raw), url));
    } catch (err) {
      if (err instanceof AccessError) {
        if (err.status === 401) res.setHeader('www-authenticate', 'Bearer realm="meshctl admin"');
        return sendJson(res, err.status, { error: { code: err.code, message: err.message } });
      }
      if (err instanceof PolicyRejected) return sendJson(res, 400, { error: { code: err.code, message: err.message, problems: err.problems } });
      if (err instanceof ControlError) return sendError(res, err);
      this.d.log(`admin web: error on ${clip(req.method ?? '')} ${clip(req.url ?? '')}: ${(err as Error).message}`);
      sendError(res, new ControlError('INTERNAL', 'internal error in the control server (its log has the detail)'));
    }
  }

  private async authenticate(req: IncomingMessage): Promise<Caller> {
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer (\S+)$/.exec(auth);
      const tokenId = m ? await verifyAdminToken(this.d.registry.store, m[1]!) : null;
      if (!tokenId)
        throw new AccessError(
          401,
          'UNAUTHORIZED',
          'the Bearer token is not an admin token of this server: create one with `meshctl control admin token create`',
        );
      return { kind: 'bearer', tokenId };
    }
    const id = cookie(req, COOKIE);
    const session = id === null ? null : this.sessions.get(id);
    if (!session)
      throw new AccessError(401, 'UNAUTHORIZED', 'log in with an admin token (`meshctl control admin token create`), or send Authorization: Bearer');
    if (!(await adminTokenExists(this.d.registry.store, session.tokenId))) {
      this.sessions.dropToken(session.tokenId);
      throw new AccessError(401, 'UNAUTHORIZED', 'the admin token of this session was revoked: log in with another');
    }
    return { kind: 'session', session };
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // before the body is read or a hash computed: a refused try costs nothing
    const waitMs = this.loginRate.take(sourceKey(req.socket.remoteAddress));
    if (waitMs > 0) {
      const sec = Math.max(1, Math.ceil(waitMs / 1000));
      throw new RateLimitedError(`too many logins from your address: try again in ${sec} s`, sec);
    }
    const token = str(fields(await readJson(req)), 'token');
    const tokenId = await verifyAdminToken(this.d.registry.store, token);
    if (!tokenId) throw new AccessError(401, 'UNAUTHORIZED', 'not an admin token of this server: create one with `meshctl control admin token create`');
    const s = this.sessions.create(tokenId);
    const maxAge = Math.floor(this.limits.sessionLifetimeMs / 1000);
    res.setHeader('set-cookie', `${COOKIE}=${s.id}; Path=/admin; Max-Age=${maxAge}; HttpOnly; Secure; SameSite=Strict`);
    sendJson(res, 200, sessionInfo({ kind: 'session', session: s }));
  }

  private openEvents(req: IncomingMessage, res: ServerResponse, caller: Caller): void {
    // a stream ends with its session: checked at each event and keepalive
    const alive = caller.kind === 'session' ? () => this.sessions.get(caller.session.id) !== null : () => true;
    if (!this.events.open(req, res, alive))
      throw new RateLimitedError(`${this.limits.maxEventStreams} event streams are open, the most at once: close a tab`, 5);
  }

  /** A change that pushes maps: the operation, then the broadcast. */
  private async change<T>(op: () => T | Promise<T>): Promise<T> {
    const out = await op();
    this.d.changed();
    return out;
  }

  private async nodes(): Promise<unknown[]> {
    const r = this.d.registry;
    const list = await listNodes(r, this.d.online);
    const records = new Map((await r.store.listNodes()).map((n) => [n.id, n]));
    // path counts are live state the nodes report with their endpoints, kept in memory: null until a node reports
    return list.map((n) => ({ ...n, homeRelay: records.get(n.id)?.homeRelay ?? null, paths: this.d.paths(n.id) }));
  }

  private relays(): unknown {
    return {
      regions: this.d.relays().map((x) => ({
        code: x.code,
        url: x.url,
        stunPort: x.stunPort,
        // control fetched the relay's certificate: it answered the last probe (or an earlier one)
        reachable: x.certFingerprint !== undefined,
        certFingerprint: x.certFingerprint ?? null,
      })),
    };
  }

  /**
   * A new auth key; with `controlUrls` (the addresses nodes reach this server at) also its join string, pinned to
   * the key of the certificate this server serves. The QR code carries the join string when there is one, else the key.
   */
  private async createKey(b: Body): Promise<unknown> {
    const urls = controlUrls(b.controlUrls);
    const k = await newAuthKey(this.d.registry, parseAuthKeyOptions(b));
    const join = urls.length === 0 ? null : encodeJoin({ urls, pin: certPin(this.d.certPem()), authKey: k.key });
    return { ...k, join, qrSvg: await qrSvg(join ?? k.key) };
  }

  private async applyPolicy(text: string): Promise<unknown> {
    const checked = checkPolicyText(text);
    if (!checked.ok) {
      const e = checked.errors[0]!;
      throw new PolicyRejected(e.message, checked.errors);
    }
    const out = await setPolicy(this.d.registry, text);
    this.d.changed();
    const r = this.d.registry;
    // what nodes advertise already may now be approved by the new autoApprovers
    void (async () => {
      const lines = await autoApprove(
        r,
        (await r.store.listNodes()).map((n) => n.id),
      );
      if (lines.length) this.d.changed();
    })().catch(() => {});
    return out;
  }
}

/** A policy error with its place in the text, for the editor. */
export interface PolicyProblem {
  message: string;
  field: string | null;
  line: number | null;
  col: number | null;
}

/** Parses and tests a policy as `control policy check` does, with every error's line and column. */
export function checkPolicyText(text: string): { ok: true; acls: number; tests: number } | { ok: false; errors: PolicyProblem[] } {
  try {
    const p = loadPolicy(text);
    return { ok: true, acls: p.acls.length, tests: p.tests.length };
  } catch (err) {
    if (err instanceof PolicyError) return { ok: false, errors: [{ message: err.message, field: err.field, line: err.line, col: err.col }] };
    if (err instanceof PolicyTestError) return { ok: false, errors: err.failures.map((f) => ({ message: f, field: 'tests', line: null, col: null })) };
    throw err;
  }
}

function sessionInfo(c: Caller): { kind: string; csrf: string | null; expires: string | null } {
  if (c.kind === 'bearer') return { kind: 'bearer', csrf: null, expires: null };
  return { kind: 'session', csrf: c.session.csrf, expires: new Date(c.session.expiresAtMs).toISOString() };
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** One cookie's value from the Cookie header, or null. */
function cookie(req: IncomingMessage, name: string): string | null {
  const h = req.headers.cookie;
  if (typeof h !== 'string') return null;
  for (const part of h.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}

function fields(raw: unknown): Body {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ControlError('BAD_REQUEST', 'the request body must be a JSON object');
  return raw as Body;
}

function str(o: Body, k: string): string {
  const v = o[k];
  if (typeof v !== 'string') throw new ControlError('BAD_REQUEST', `${k} must be a string`);
  return v;
}

const clip = (s: string): string => terminalSafe(s, 80);

/** The control URLs a join string names: absent or empty for none, else 1-MAX_JOIN_URLS canonical https://HOST[:PORT]. */
function controlUrls(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > MAX_JOIN_URLS) throw new ControlError('BAD_REQUEST', `controlUrls must be a list of at most ${MAX_JOIN_URLS} URLs`);
  const urls: string[] = [];
  for (const u of v) {
    const o = typeof u === 'string' ? controlOrigin(u) : { problem: 'not a string' };
    if (typeof o !== 'string') throw new ControlError('BAD_REQUEST', `controlUrls: "${clip(String(u))}" is ${o.problem}: give https://HOST:PORT`);
    if (!urls.includes(o)) urls.push(o);
  }
  return urls;
}

/** A policy refused by `set`: the error body carries every problem with its line and column. */
class PolicyRejected extends ControlError {
  constructor(
    message: string,
    readonly problems: PolicyProblem[],
  ) {
    super('BAD_REQUEST', message);
  }
}
