// Every request a node (or a relay) sends the control server, parsed into typed
// values at the edge. Nothing past these functions looks at the raw JSON: a
// field of the wrong type, a key of the wrong length, an endpoint that is not
// exactly IP:port, an over-long or unprintable string is refused here with a
// ControlError('BAD_REQUEST') whose one-line message names the field and what
// it must be. Fields a handler does not know are ignored (never stored), so a
// newer node still talks to an older server.
import { BOX_NONCE_LEN, BOX_OVERHEAD } from '../crypto/box.js';
import { keyFromText, keyToText } from '../crypto/keys.js';
import { AddressSyntaxError, parseIpEndpoint, parsePrefix, type IpPrefix } from '../util/netaddr.js';
import { subnetRouteProblem } from '../netmap/routes.js';
import { isPrintable } from '../util/text.js';
import { ControlError, type SealedOp } from './protocol.js';
import { MAX_NODE_ENDPOINTS, MAX_NODE_OS_CHARS, MAX_NODE_ROUTES, MAX_NODE_VERSION_CHARS, type PathCounts } from '../netmap/types.js';

/** A DNS name is at most 255 characters; the registry shortens it to a 63-character label. */
export const MAX_HOSTNAME_CHARS = 255;
/** `process.platform` values are short ("linux", "darwin", "win32"). */
export const MAX_OS_CHARS = MAX_NODE_OS_CHARS;
/** A release version with a build suffix ("0.1.0-dev+abcdef0") fits easily. */
export const MAX_VERSION_CHARS = MAX_NODE_VERSION_CHARS;
/** Auth keys are `mskey-` + 12 + 1 + 48 characters; room for a future format, nothing more. */
export const MAX_AUTHKEY_CHARS = 128;
/** Endpoints one node may report (netmap/types.ts says why the number). */
export const MAX_ENDPOINTS = MAX_NODE_ENDPOINTS;
/** Subnet routes one node may advertise (netmap/types.ts says why the number). */
export const MAX_ADVERTISED_ROUTES = MAX_NODE_ROUTES;
/** Relay region codes, as `--relay CODE=…` and the config file accept them. */
export const REGION_CODE_RE = /^[a-z0-9-]{1,32}$/;
/** The daemon sends 12 random bytes as hex; 8-64 URL-safe characters are accepted. */
const NONCE_RE = /^[A-Za-z0-9_-]{8,64}$/;
/** Strict base64 (with padding), as Buffer#toString('base64') writes it. */
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const SEALED_OPS: readonly SealedOp[] = ['register', 'map', 'endpoints', 'advertise', 'logout'];

const bad = (message: string): ControlError => new ControlError('BAD_REQUEST', message);

type Obj = Record<string, unknown>;

function object(raw: unknown, what: string): Obj {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`${what} must be a JSON object`);
  return raw as Obj;
}

/** A 32-byte key in its base64 text form; returns the canonical text. */
export function keyField(o: Obj, name: string, what: string): string {
  const b = keyFromText(o[name]);
  if (!b) throw bad(`${what}.${name} must be a base64 32-byte key`);
  return keyToText(b);
}

function printableField(o: Obj, name: string, what: string, max: number): string {
  const v = o[name];
  if (!isPrintable(v, max)) throw bad(`${what}.${name} must be a string of 1-${max} printable characters`);
  return v;
}

/** A list of at most MAX_ENDPOINTS `ip:port` texts, each in canonical form, duplicates dropped. */
function endpointsField(o: Obj, what: string): string[] {
  const v = o.endpoints;
  if (!Array.isArray(v)) throw bad(`${what}.endpoints must be a list of "ip:port" strings`);
  if (v.length > MAX_ENDPOINTS) throw bad(`${what}.endpoints has ${v.length} entries; at most ${MAX_ENDPOINTS} are accepted`);
  const out = new Set<string>();
  for (const [i, e] of v.entries()) {
    try {
      out.add(parseIpEndpoint(e).text);
    } catch (err) {
      if (err instanceof AddressSyntaxError) throw bad(`${what}.endpoints[${i}]: ${err.message}`);
      throw err;
    }
  }
  return [...out];
}

export interface SealedRequestIn {
  /** canonical base64 of the 32-byte node key */
  nodeKey: string;
  nodeKeyBytes: Buffer;
  /** nonce ‖ box */
  box: Buffer;
}

/** The outer, unsealed envelope of a node request. */
export function parseSealedRequest(raw: unknown, maxBoxBytes: number): SealedRequestIn {
  const o = object(raw, 'request');
  const nodeKeyBytes = keyFromText(o.nodeKey);
  if (!nodeKeyBytes) throw bad('request.nodeKey must be a base64 32-byte key');
  const text = o.box;
  if (typeof text !== 'string' || text.length > Math.ceil(maxBoxBytes / 3) * 4 || !BASE64_RE.test(text)) {
    throw bad(`request.box must be base64 of at most ${maxBoxBytes} bytes`);
  }
  const box = Buffer.from(text, 'base64');
  if (box.length < BOX_NONCE_LEN + BOX_OVERHEAD) throw bad('request.box is too short to be a sealed box');
  return { nodeKey: keyToText(nodeKeyBytes), nodeKeyBytes, box };
}

export interface SealedHeaderIn {
  op: SealedOp;
  tsMs: number;
  nonce: string;
}

/** The header inside every box: which operation, when, and a nonce for the replay cache. */
export function parseSealedHeader(o: Obj): SealedHeaderIn {
  const op = o.op;
  if (typeof op !== 'string' || !(SEALED_OPS as readonly string[]).includes(op)) {
    throw bad(`sealed op ${JSON.stringify(typeof op === 'string' ? op.slice(0, 32) : typeof op)} is unknown: expected one of ${SEALED_OPS.join(', ')}`);
  }
  const tsMs = o.tsMs;
  if (typeof tsMs !== 'number' || !Number.isSafeInteger(tsMs) || tsMs < 0) throw bad('sealed tsMs must be a whole number of milliseconds since 1970');
  const nonce = o.nonce;
  if (typeof nonce !== 'string' || !NONCE_RE.test(nonce)) throw bad('sealed nonce must be 8-64 letters, digits, "-" or "_"');
  return { op: op as SealedOp, tsMs, nonce };
}

/** Parses the plaintext of a box: a JSON object. */
export function parseSealedJson(plain: Buffer): Obj {
  let raw: unknown;
  try {
    raw = JSON.parse(plain.toString('utf8'));
  } catch {
    throw bad('sealed body is not JSON');
  }
  return object(raw, 'sealed body');
}

export interface RegisterIn {
  authKey: string | null;
  hostname: string;
  os: string;
  version: string;
  discoKey: string;
  endpoints: string[];
  /** undefined: unchanged */
  advertised?: AdvertiseIn;
}

export function parseRegisterBody(o: Obj, mesh: readonly IpPrefix[] = []): RegisterIn {
  let authKey: string | null = null;
  if (o.authKey !== undefined && o.authKey !== null) authKey = printableField(o, 'authKey', 'register', MAX_AUTHKEY_CHARS);
  const r: RegisterIn = {
    authKey,
    hostname: printableField(o, 'hostname', 'register', MAX_HOSTNAME_CHARS),
    os: printableField(o, 'os', 'register', MAX_OS_CHARS),
    version: printableField(o, 'version', 'register', MAX_VERSION_CHARS),
    discoKey: keyField(o, 'discoKey', 'register'),
    endpoints: endpointsField(o, 'register'),
  };
  if (o.advertised !== undefined) r.advertised = parseAdvertised(object(o.advertised, 'register.advertised'), 'register.advertised', mesh);
  return r;
}

export interface AdvertiseIn {
  /** canonical prefixes, distinct, in the order given */
  routes: string[];
  exitNode: boolean;
}

/**
 * What a node advertises: at most MAX_ADVERTISED_ROUTES subnet routes, each a
 * canonical prefix that may be a route in this network (netmap/routes.ts: no
 * host bits, not the default route, not the mesh's prefixes, not loopback,
 * link-local or multicast), and the exit-node flag.
 */
export function parseAdvertised(o: Obj, what: string, mesh: readonly IpPrefix[]): AdvertiseIn {
  const v = o.routes;
  if (!Array.isArray(v)) throw bad(`${what}.routes must be a list of prefixes such as "192.168.1.0/24"`);
  if (v.length > MAX_ADVERTISED_ROUTES) throw bad(`${what}.routes has ${v.length} entries; at most ${MAX_ADVERTISED_ROUTES} are accepted`);
  const routes = new Set<string>();
  for (const [i, r] of v.entries()) {
    let p: IpPrefix;
    try {
      p = parsePrefix(r);
    } catch (err) {
      if (err instanceof AddressSyntaxError) throw bad(`${what}.routes[${i}]: ${err.message}`);
      throw err;
    }
    const problem = subnetRouteProblem(p, mesh);
    if (problem) throw bad(`${what}.routes[${i}]: ${problem}`);
    routes.add(p.text);
  }
  if (typeof o.exitNode !== 'boolean') throw bad(`${what}.exitNode must be true or false`);
  return { routes: [...routes], exitNode: o.exitNode };
}

/** The body of the `advertise` op: the whole advertisement, replacing the previous one. */
export function parseAdvertiseBody(o: Obj, mesh: readonly IpPrefix[] = []): AdvertiseIn {
  return parseAdvertised(o, 'advertise', mesh);
}

export interface MapIn {
  endpoints: string[];
  discoKey: string;
  /** the node applies deltas: after the first whole map its stream carries only what changed (absent: whole maps) */
  deltas: boolean;
  /** the node applies packet-filter patches in deltas (absent: a changed filter goes whole) */
  filterPatches: boolean;
}

export type { PathCounts };

export function parseMapBody(o: Obj): MapIn {
  if (o.deltas !== undefined && typeof o.deltas !== 'boolean') throw bad('map.deltas must be true or false');
  if (o.filterPatches !== undefined && typeof o.filterPatches !== 'boolean') throw bad('map.filterPatches must be true or false');
  return { endpoints: endpointsField(o, 'map'), discoKey: keyField(o, 'discoKey', 'map'), deltas: o.deltas === true, filterPatches: o.filterPatches === true };
}

/**
 * Peers a node may report as direct or relayed, each count and both together: a node's peers are the other nodes of
 * its map, and a map of a million nodes (hundreds of MB of JSON) is far past what control sends; above it is a lie.
 */
export const MAX_REPORTED_PEERS = 1_000_000;

export interface EndpointsIn {
  endpoints: string[];
  /** undefined: unchanged; null: none */
  homeRelay: string | null | undefined;
  /** undefined: not reported (an older node, or no change since its last report) */
  paths: PathCounts | undefined;
}

function pathCountsField(o: Obj): PathCounts | undefined {
  const v = o.paths;
  if (v === undefined) return undefined;
  const p = object(v, 'endpoints.paths');
  const count = (name: 'direct' | 'relay'): number => {
    const n = p[name];
    if (!Number.isSafeInteger(n) || (n as number) < 0 || (n as number) > MAX_REPORTED_PEERS) {
      throw bad(`endpoints.paths.${name} must be an integer from 0 to ${MAX_REPORTED_PEERS}`);
    }
    return n as number;
  };
  const out = { direct: count('direct'), relay: count('relay') };
  if (out.direct + out.relay > MAX_REPORTED_PEERS) throw bad(`endpoints.paths: direct + relay must be at most ${MAX_REPORTED_PEERS}`);
  return out;
}

export function parseEndpointsBody(o: Obj): EndpointsIn {
  const h = o.homeRelay;
  if (h !== undefined && h !== null && (typeof h !== 'string' || !REGION_CODE_RE.test(h))) {
    throw bad('endpoints.homeRelay must be null or a region code of 1-32 lower-case letters, digits or dashes');
  }
  return { endpoints: endpointsField(o, 'endpoints'), homeRelay: h as string | null | undefined, paths: pathCountsField(o) };
}

/** The logout body carries nothing beyond the header. */
export function parseLogoutBody(_o: Obj): Record<string, never> {
  return {};
}

/**
 * The query of `GET /meshctl/v1/verify?nodeKey=KEY` (relays' --verify-clients):
 * exactly one parameter, a 32-byte key. Returns the canonical key text.
 */
export function parseVerifyQuery(query: string): string {
  const params = new URLSearchParams(query);
  const names = [...params.keys()];
  if (names.length !== 1 || names[0] !== 'nodeKey') throw bad('verify takes exactly one parameter: ?nodeKey=KEY');
  const b = keyFromText(params.get('nodeKey'));
  if (!b) throw bad('verify: nodeKey must be a base64 32-byte key');
  return keyToText(b);
}
