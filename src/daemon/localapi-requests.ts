// Local API request bodies, parsed at the edge into the typed requests of
// src/localapi/types.ts. Any local user can send them, so every field is
// checked for type and length; a wrong one is a BAD_REQUEST naming the field,
// and a field this daemon does not know is refused (not ignored), so a typo or
// a CLI newer than the daemon is told so instead of being half obeyed.
import { parsePin } from '../crypto/spki-pin.js';
import { parseExitNodeSelector } from './exit-node.js';
import { X509Certificate } from 'node:crypto';
import { ApiError, type DnsQueryRequest, type PingRequest, type PrefsRequest, type UpRequest } from '../localapi/types.js';
import { isPrintable, terminalSafe } from '../util/text.js';
import { parseIp } from '../util/netaddr.js';
import { QUERY_TYPES } from '../dns/client.js';
import { canonicalName, isQueryName } from '../dns/names.js';
import { parseRouteList } from './route-prefs.js';
import { MAX_LOGIN_SERVERS } from './state.js';

/** A URL longer than this is no login server anyone typed; browsers' practical limit. */
export const MAX_URL_CHARS = 2048;
/** Auth keys are `mskey-` + 12 + 48 hex characters; 256 leaves room for other formats without letting a body grow. */
export const MAX_AUTH_KEY_CHARS = 256;
/** A DNS name is at most 253 characters; the control server shortens it to a label itself. */
export const MAX_HOSTNAME_CHARS = 253;
/** A PEM certificate is 1-2 KiB; 64 KiB holds a chain of several. */
export const MAX_CA_PEM_CHARS = 64 * 1024;
/** `up` holds a connection while it waits; an hour is longer than any control server takes to answer. */
export const MAX_UP_TIMEOUT_MS = 3_600_000;
/** A disco ping that has not come back within a minute will not. */
export const MAX_PING_TIMEOUT_MS = 60_000;
const DEFAULT_PING_TIMEOUT_MS = 5000;
/** Linux interface names: at most IFNAMSIZ - 1 = 15 bytes, no '/', ':' or white space; we allow the usual characters. */
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
/** A user name as useradd accepts it (at most 32 characters), or a numeric uid. */
const USER_RE = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,30}\$?|\d{1,10})$/;

function bad(msg: string): ApiError {
  return new ApiError('BAD_REQUEST', msg);
}

function objectOf(body: unknown, what: string, known: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad(`the ${what} request must be a JSON object`);
  for (const k of Object.keys(body)) {
    if (known.includes(k)) continue;
    throw bad(`unknown field "${terminalSafe(k, 40)}" in the ${what} request (known: ${known.join(', ')}); is the daemon older than the CLI? restart it`);
  }
  return body as Record<string, unknown>;
}

function text(o: Record<string, unknown>, what: string, key: string, max: number): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!isPrintable(v, max)) throw bad(`${what}: ${key} must be a string of 1 to ${max} characters without control characters`);
  return v;
}

function num(o: Record<string, unknown>, what: string, key: string, min: number, max: number, integer: boolean): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    throw bad(`${what}: ${key} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return v;
}

function bool(o: Record<string, unknown>, what: string, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw bad(`${what}: ${key} must be true or false`);
  return v;
}

function loginServerOf(o: Record<string, unknown>, key = 'loginServer'): string | undefined {
  const v = text(o, 'up', key, MAX_URL_CHARS);
  if (v === undefined) return undefined;
  return checkLoginServer(v);
}

/** Control URLs (replicas) as `up --login-server` repeated gives them: at most MAX_LOGIN_SERVERS, distinct, https. */
function loginServersOf(o: Record<string, unknown>): string[] | undefined {
  const v = o.loginServers;
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_LOGIN_SERVERS) {
    throw bad(`up: loginServers must be a list of 1-${MAX_LOGIN_SERVERS} URLs (--login-server repeated)`);
  }
  const out = v.map((u) => {
    if (typeof u !== 'string' || !isPrintable(u, MAX_URL_CHARS)) throw bad(`up: loginServers holds a non-URL: pass --login-server https://HOST:PORT`);
    return checkLoginServer(u);
  });
  if (new Set(out).size !== out.length) throw bad('up: a login server is given twice');
  return out;
}

function checkLoginServer(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw bad(`up: loginServer "${terminalSafe(v, 80)}" is not a URL: pass --login-server https://HOST:PORT`);
  }
  if (u.protocol !== 'https:') throw bad(`up: login server ${terminalSafe(v, 80)} must be an https:// URL`);
  if (u.username || u.password) throw bad('up: the login server URL must not carry a user name or password');
  return v;
}

function pinOf(o: Record<string, unknown>): string | undefined {
  const v = o.controlPin;
  if (v === undefined) return undefined;
  if (parsePin(v) === null) throw bad("up: controlPin must be sha256// and the base64 of 32 bytes (the SHA-256 of the server certificate's public key)");
  return v as string;
}

function caPemOf(o: Record<string, unknown>): string | undefined {
  const v = o.controlCaPem;
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_CA_PEM_CHARS)
    throw bad(`up: controlCaPem must be a PEM certificate of at most ${MAX_CA_PEM_CHARS} characters`);
  try {
    new X509Certificate(v);
  } catch {
    throw bad('up: controlCaPem is not a PEM certificate (get one with `meshctl control ca`)');
  }
  return v;
}

export function parseUpRequest(body: unknown): UpRequest {
  const o = objectOf(body, 'up', [
    'loginServer',
    'loginServers',
    'authKey',
    'hostname',
    'controlCaPem',
    'controlPin',
    'ifname',
    'port',
    'timeoutMs',
    'acceptDns',
    ...ROUTE_KEYS,
  ]);
  const r: UpRequest = {};
  const loginServer = loginServerOf(o);
  if (loginServer !== undefined) r.loginServer = loginServer;
  const loginServers = loginServersOf(o);
  if (loginServers !== undefined) {
    if (loginServer !== undefined && loginServer !== loginServers[0]) throw bad('up: loginServers must start with loginServer');
    r.loginServer = loginServers[0];
    r.loginServers = loginServers;
  }
  const authKey = text(o, 'up', 'authKey', MAX_AUTH_KEY_CHARS);
  if (authKey !== undefined) r.authKey = authKey;
  const hostname = text(o, 'up', 'hostname', MAX_HOSTNAME_CHARS);
  if (hostname !== undefined) r.hostname = hostname;
  const caPem = caPemOf(o);
  if (caPem !== undefined) r.controlCaPem = caPem;
  const pin = pinOf(o);
  if (pin !== undefined) r.controlPin = pin;
  if (pin !== undefined && caPem !== undefined) throw bad('up: give controlCaPem or controlPin, not both');
  const ifname = text(o, 'up', 'ifname', 15);
  if (ifname !== undefined) {
    if (!IFNAME_RE.test(ifname) || ifname === '.' || ifname === '..') {
      throw bad(`up: ifname "${terminalSafe(ifname, 20)}" is not an interface name (letters, digits, _ . -; at most 15)`);
    }
    r.ifname = ifname;
  }
  const port = num(o, 'up', 'port', 0, 65535, true);
  if (port !== undefined) r.port = port;
  const timeoutMs = num(o, 'up', 'timeoutMs', 1, MAX_UP_TIMEOUT_MS, false);
  if (timeoutMs !== undefined) r.timeoutMs = timeoutMs;
  const acceptDns = bool(o, 'up', 'acceptDns');
  if (acceptDns !== undefined) r.acceptDns = acceptDns;
  Object.assign(r, routeFields(o, 'up'));
  return r;
}

const ROUTE_KEYS = ['advertiseRoutes', 'acceptRoutes', 'snatSubnetRoutes', 'advertiseExitNode', 'exitNode', 'exitNodeAllowLanAccess'] as const;

/** The routing settings of an up or prefs request, each optional. */
function routeFields(o: Record<string, unknown>, what: string): Pick<UpRequest, (typeof ROUTE_KEYS)[number]> {
  const r: Pick<UpRequest, (typeof ROUTE_KEYS)[number]> = {};
  if (o.advertiseRoutes !== undefined) {
    try {
      r.advertiseRoutes = parseRouteList(o.advertiseRoutes, `${what}: advertiseRoutes`);
    } catch (err) {
      throw bad((err as Error).message);
    }
  }
  const accept = bool(o, what, 'acceptRoutes');
  if (accept !== undefined) r.acceptRoutes = accept;
  const snat = bool(o, what, 'snatSubnetRoutes');
  if (snat !== undefined) r.snatSubnetRoutes = snat;
  const advExit = bool(o, what, 'advertiseExitNode');
  if (advExit !== undefined) r.advertiseExitNode = advExit;
  const lan = bool(o, what, 'exitNodeAllowLanAccess');
  if (lan !== undefined) r.exitNodeAllowLanAccess = lan;
  if (o.exitNode !== undefined) {
    try {
      r.exitNode = parseExitNodeSelector(o.exitNode, `${what}: exitNode`);
    } catch (err) {
      throw bad((err as Error).message);
    }
  }
  return r;
}

export function parsePrefsRequest(body: unknown): PrefsRequest {
  const o = objectOf(body, 'prefs', ['operator', 'hostname', 'acceptDns', ...ROUTE_KEYS]);
  const r: PrefsRequest = {};
  if (o.operator === null) r.operator = null;
  else if (o.operator !== undefined) {
    if (typeof o.operator !== 'string' || !USER_RE.test(o.operator)) throw bad(`prefs: operator must be a user name or a uid ("" clears it)`);
    r.operator = o.operator;
  }
  const hostname = text(o, 'prefs', 'hostname', MAX_HOSTNAME_CHARS);
  if (hostname !== undefined) r.hostname = hostname;
  const acceptDns = bool(o, 'prefs', 'acceptDns');
  if (acceptDns !== undefined) r.acceptDns = acceptDns;
  Object.assign(r, routeFields(o, 'prefs'));
  return r;
}

/** A ping request with its timeout filled in and held to 1 ms .. MAX_PING_TIMEOUT_MS. */
export function parsePingRequest(body: unknown): Required<PingRequest> {
  const o = objectOf(body, 'ping', ['peer', 'timeoutMs']);
  const peer = text(o, 'ping', 'peer', MAX_HOSTNAME_CHARS);
  if (peer === undefined) throw bad('ping needs a peer (a name or a mesh address)');
  const t = o.timeoutMs;
  if (t !== undefined && (typeof t !== 'number' || Number.isNaN(t))) throw bad('ping: timeoutMs must be a number of milliseconds');
  return { peer, timeoutMs: Math.min(MAX_PING_TIMEOUT_MS, Math.max(1, t ?? DEFAULT_PING_TIMEOUT_MS)) };
}

/** A DNS name as text: 253 characters, one more for the root's trailing dot. */
export const MAX_QUERY_NAME_CHARS = 254;

/** `dns query`: a domain name (or, for PTR, an IP address) and one of the client's QUERY_TYPES (default A). */
export function parseDnsQueryRequest(body: unknown): Required<DnsQueryRequest> {
  const o = objectOf(body, 'dns query', ['name', 'type']);
  const name = text(o, 'dns query', 'name', MAX_QUERY_NAME_CHARS);
  const usage = 'dns query needs a domain name (labels of 1-63 printable characters, 253 in all): meshctl dns query NAME [TYPE]';
  if (name === undefined || /\s/.test(name)) throw bad(usage);
  const type = text(o, 'dns query', 'type', 8)?.toUpperCase() ?? 'A';
  if (!(QUERY_TYPES as readonly string[]).includes(type)) throw bad(`dns query: type must be one of ${QUERY_TYPES.join(', ')}`);
  let isIp = false;
  try {
    parseIp(name);
    isIp = true;
  } catch {
    /* a name */
  }
  if (!(isIp && type === 'PTR') && !isQueryName(canonicalName(name))) throw bad(usage);
  return { name, type };
}
