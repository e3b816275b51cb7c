// Strict parsers for what the control server sends a node (network maps, map
// stream lines, register results) and for the same shapes read back from the
// state directory. Every field is checked for type and bounds and re-emitted
// in canonical text (keys re-encoded, addresses through util/netaddr), so what
// reaches the engine and the OS is never the text that came in. A value that
// fails is refused whole with a MapParseError naming the field, e.g.
// `peers[3].addresses[0]: not an IP address: "…"`.
import {
  type DeviceView,
  type DnsConfig,
  type DnsRecord,
  type DnsRoute,
  type FilterDestination,
  type FilterRule,
  MAX_NETWORK_DEVICES,
  MAX_NODE_ENDPOINTS,
  MAX_NODE_OS_CHARS,
  MAX_NODE_ROUTES,
  MAX_NODE_VERSION_CHARS,
  type MapDelta,
  type MapLine,
  type NetworkMap,
  type NodeView,
  type OptionalPeerField,
  type FilterPatch,
  type FilterRuleEdit,
  type PatchableField,
  type PeerPatch,
  type RegisterResult,
  type RelayRegion,
} from './types.js';
import {
  asciiLower,
  dnsNameProblem,
  MAX_DNS_LABEL_CHARS,
  MAX_DNS_LOCAL_RESOLVERS,
  MAX_DNS_RECORDS,
  MAX_DNS_ROUTES,
  MAX_DNS_SUFFIX_CHARS,
  MAX_RESOLVERS_PER_ROUTE,
} from './dns-names.js';
import { keyFromText, keyToText } from '../crypto/keys.js';
import { AddressSyntaxError, parseIp, parseIpEndpoint, parsePrefix, prefixContains, type IpAddress, type IpFamily, type IpPrefix } from '../util/netaddr.js';
import { isPrintable, terminalSafe } from '../util/text.js';
import { isDefaultRoute, maskedPrefix, subnetRouteProblem } from './routes.js';
import { isoTime } from '../util/time.js';
import { MAX_TAGS_PER_NODE, tagProblem, userNameProblem } from './identity.js';

/** Peers in one map: far above what one control server's network holds, and it bounds the engine's peer table and the work per map. */
export const MAX_PEERS = 10_000;
/** Mesh addresses per node: control assigns one per family; a little room for more without unbounded growth. */
export const MAX_ADDRESSES_PER_NODE = 8;
/** Subnet routes per node (approved, primary, advertised): as control accepts them (types.ts). */
export const MAX_ROUTES_PER_NODE = MAX_NODE_ROUTES;
/** Devices on stock WireGuard in one map (types.ts says why the number). */
export const MAX_DEVICES = MAX_NETWORK_DEVICES;
/** Addresses of one device: one per family. */
export const MAX_ADDRESSES_PER_DEVICE = 2;
/**
 * AllowedIPs per peer: its addresses, its primary subnet routes, and, for a
 * gateway, its devices' addresses; bounds the cryptokey-routing table per peer.
 */
export const MAX_ALLOWED_IPS_PER_PEER = MAX_ADDRESSES_PER_NODE + MAX_ROUTES_PER_NODE + MAX_ADDRESSES_PER_DEVICE * MAX_DEVICES;
/** Endpoints per peer: the limit control enforces on what a node reports (types.ts); each is a path candidate probed by disco. */
export const MAX_ENDPOINTS_PER_PEER = MAX_NODE_ENDPOINTS;
/** Relays in the map (all regions together): each needed region is a TLS connection and a STUN target. */
export const MAX_RELAYS = 64;
/** A node name: the longest DNS name's text form. */
export const MAX_NAME_CHARS = 253;
/** OS and version strings: as control accepts them (types.ts). */
export const MAX_OS_CHARS = MAX_NODE_OS_CHARS;
export const MAX_VERSION_CHARS = MAX_NODE_VERSION_CHARS;
/** A relay region code (the control server allows 1-32 of [a-z0-9-]). */
export const MAX_REGION_CHARS = 32;
/** A relay URL: https://HOST:PORT with a short path at most. */
export const MAX_URL_CHARS = 512;
/**
 * Mesh prefixes are routed into the interface: nothing wider than a /8 (IPv4) or /16 (IPv6),
 * so a map cannot route the host's default traffic into the mesh.
 */
export const MIN_MESH_PREFIX_BITS_V4 = 8;
export const MIN_MESH_PREFIX_BITS_V6 = 16;
/**
 * Packet-filter rules in one map: the policy's rules that concern the node.
 * Control makes at most two per acl entry (its destinations, and its
 * autogroup:self part; a policy holds at most 1,000 entries, MAX_POLICY_ACLS)
 * and splits a rule whose destinations exceed MAX_FILTER_DESTINATIONS.
 */
export const MAX_FILTER_RULES = 4_000;
/**
 * Source prefixes of one rule: the nodes that may reach this node are its
 * peers (at most MAX_PEERS, one address per family each, plus itself) and the
 * policy's own prefixes.
 */
export const MAX_FILTER_SOURCES = 2 * (MAX_PEERS + 1) + 1_000;
/** Destinations of one rule: this node's addresses, the routes and devices it serves, per port range; control splits longer rules. */
export const MAX_FILTER_DESTINATIONS = 1_000;
/** Protocols of one rule: IANA numbers are 0-255, each at most once. */
export const MAX_FILTER_PROTOCOLS = 256;
/** ISO 8601 timestamps as isoTime writes them (6-digit years included). */
const MAX_TIME_CHARS = 32;

export class MapParseError extends Error {
  override readonly name = 'MapParseError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** A value as shown in an error: short, quoted, control characters escaped by JSON. */
export function shown(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  if (v === undefined) return 'nothing (missing)';
  if (typeof v !== 'string') return Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
  return JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);
}

/** Refuses the value at `field`: a MapParseError `field: reason`. */
export function fail(field: string, reason: string): never {
  throw new MapParseError(field, reason);
}

function object(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, `expected an object, got ${shown(v)}`);
  return v as Record<string, unknown>;
}

function list(v: unknown, field: string, max: number): unknown[] {
  if (!Array.isArray(v)) fail(field, `expected a list, got ${shown(v)}`);
  if (v.length > max) fail(field, `${v.length} entries, more than the ${max} allowed`);
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') fail(field, `expected true or false, got ${shown(v)}`);
  return v;
}

/** 1..max characters with no control or bidi characters. */
function text(v: unknown, field: string, max: number): string {
  if (isPrintable(v, max)) return v;
  if (typeof v !== 'string') fail(field, `expected a string, got ${shown(v)}`);
  fail(field, v.length === 0 ? 'empty' : v.length > max ? `longer than ${max} characters` : `control characters in ${shown(v)}`);
}

/** As text, but may be empty (a node that sent no OS or version). */
function optText(v: unknown, field: string, max: number): string {
  return v === '' ? '' : text(v, field, max);
}

function key(v: unknown, field: string): string {
  const k = keyFromText(v);
  if (!k) fail(field, `not a 32-byte base64 key: ${shown(v)}`);
  return keyToText(k);
}

function wrap<T>(field: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof MapParseError) throw err;
    fail(field, (err as Error).message);
  }
}

function ip(v: unknown, field: string): string {
  return wrap(field, () => parseIp(v).text);
}

/** An address of one family, canonical. */
function ipOf(v: unknown, family: IpFamily, field: string): string {
  const a = wrap(field, () => parseIp(v));
  if (a.family !== family) fail(field, `expected an IPv${family} address, got ${shown(v)}`);
  return a.text;
}

function meshPrefix(v: unknown, field: string, family: IpFamily): string {
  const p = wrap(field, () => parsePrefix(v));
  const min = family === 4 ? MIN_MESH_PREFIX_BITS_V4 : MIN_MESH_PREFIX_BITS_V6;
  if (p.address.family !== family) fail(field, `expected an IPv${family} prefix, got ${shown(v)}`);
  if (p.bits < min) fail(field, `${p.text} is wider than /${min}: it would route much of the host's traffic into the mesh`);
  return p.text;
}

function endpoint(v: unknown, field: string): string {
  return wrap(field, () => parseIpEndpoint(v).text);
}

function time(v: unknown, field: string): string | null {
  if (v === null) return null;
  if (typeof v !== 'string' || v.length > MAX_TIME_CHARS || !/^[+-]?\d{4,6}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/.test(v) || Number.isNaN(Date.parse(v))) {
    fail(field, `not an ISO 8601 UTC time: ${shown(v)}`);
  }
  return isoTime(Date.parse(v));
}

function region(v: unknown, field: string): string {
  const s = text(v, field, MAX_REGION_CHARS);
  if (!/^[a-z0-9-]+$/.test(s)) fail(field, `a region code is lower-case letters, digits and dashes: ${shown(v)}`);
  return s;
}

function httpsUrl(v: unknown, field: string): string {
  const s = text(v, field, MAX_URL_CHARS);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    fail(field, `not a URL: ${shown(v)}`);
  }
  if (u.protocol !== 'https:') fail(field, `not an https:// URL: ${shown(v)}`);
  if (!u.hostname || u.username || u.password || u.search || u.hash) fail(field, `expected https://HOST:PORT: ${shown(v)}`);
  // an IPv6 literal host: exactly an address (no zone), canonical as the URL parser writes it
  if (u.hostname.startsWith('[')) ipOf(u.hostname.slice(1, -1), 6, field);
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
}

function port(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) fail(field, `not a port (1-65535): ${shown(v)}`);
  return v;
}

/** The mesh prefixes a node view's routes are checked against (routes may not overlap them). */
export interface MeshPrefixes {
  ipv4: string;
  ipv6: string;
}

/** A list of distinct subnet routes, each canonical and allowed as a route (netmap/routes.ts). */
function routeList(v: unknown, field: string, mesh: IpPrefix[]): string[] {
  const out = list(v, field, MAX_ROUTES_PER_NODE).map((r, i) => {
    const p = wrap(`${field}[${i}]`, () => parsePrefix(r));
    const problem = subnetRouteProblem(p, mesh);
    if (problem) fail(`${field}[${i}]`, problem);
    return p.text;
  });
  if (new Set(out).size !== out.length) fail(field, 'a route is listed twice');
  return out;
}

/** How each field of a node view is checked and made canonical; patches (deltas) use the same checks field by field. */
const NODE_FIELDS: { [K in PatchableField]-?: (v: unknown, field: string, mesh: IpPrefix[]) => NonNullable<NodeView[K]> | null } = {
  name: (v, f) => text(v, f, MAX_NAME_CHARS),
  nodeKey: (v, f) => key(v, f),
  discoKey: (v, f) => key(v, f),
  addresses: (v, f) => {
    const out = list(v, f, MAX_ADDRESSES_PER_NODE).map((a, i) => ip(a, `${f}[${i}]`));
    if (out.length === 0) fail(f, 'no address');
    return out;
  },
  allowedIps: (v, f) =>
    list(v, f, MAX_ALLOWED_IPS_PER_PEER).map((a, i) => {
      const p = wrap(`${f}[${i}]`, () => parsePrefix(a));
      // the default route is added by a client for the exit node it chose, never by the map
      if (isDefaultRoute(p)) fail(`${f}[${i}]`, `${p.text} in a map would send all traffic to this peer`);
      return p.text;
    }),
  endpoints: (v, f) => list(v, f, MAX_ENDPOINTS_PER_PEER).map((e, i) => endpoint(e, `${f}[${i}]`)),
  homeRelay: (v, f) => (v === null || v === undefined ? null : region(v, f)),
  online: (v, f) => bool(v, f),
  lastSeen: (v, f) => time(v ?? null, f),
  os: (v, f) => optText(v, f, MAX_OS_CHARS),
  version: (v, f) => optText(v, f, MAX_VERSION_CHARS),
  keyExpiry: (v, f) => time(v ?? null, f),
  ephemeral: (v, f) => bool(v, f),
  routes: (v, f, mesh) => routeList(v, f, mesh),
  primaryRoutes: (v, f, mesh) => routeList(v, f, mesh),
  exitNode: (v, f) => bool(v, f),
  user: (v, f) => {
    const problem = userNameProblem(v);
    if (problem) fail(f, `${problem}: ${shown(v)}`);
    return v as string;
  },
  tags: (v, f) => {
    const tags = list(v, f, MAX_TAGS_PER_NODE).map((t, i) => {
      const problem = tagProblem(t);
      if (problem) fail(`${f}[${i}]`, `${problem}: ${shown(t)}`);
      return t as string;
    });
    if (new Set(tags).size !== tags.length) fail(f, 'a tag is listed twice');
    return tags;
  },
};

const OPTIONAL_PEER_FIELDS: ReadonlySet<string> = new Set<OptionalPeerField>(['routes', 'primaryRoutes', 'exitNode', 'user', 'tags']);

function nodeId(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(field, `not a node id: ${shown(v)}`);
  return v;
}

function meshList(mesh: MeshPrefixes | undefined): IpPrefix[] {
  return mesh ? [parsePrefix(mesh.ipv4), parsePrefix(mesh.ipv6)] : [];
}

/**
 * One node's view (a peer, or the node itself). `self` is whether it is the
 * receiving node's own view: only that one may carry `advertised`. With
 * `mesh`, subnet routes are checked not to overlap the mesh prefixes.
 */
export function parseNodeView(json: unknown, field: string, opts: { self?: boolean; mesh?: MeshPrefixes } = {}): NodeView {
  const o = object(json, field);
  const f = (name: string): string => `${field}.${name}`;
  const mesh = meshList(opts.mesh);
  const req = <K extends PatchableField>(k: K): NonNullable<NodeView[K]> => NODE_FIELDS[k](o[k], f(k), mesh) as NonNullable<NodeView[K]>;
  const view: NodeView = {
    id: nodeId(o.id, f('id')),
    name: req('name'),
    nodeKey: req('nodeKey'),
    discoKey: req('discoKey'),
    addresses: req('addresses'),
    allowedIps: req('allowedIps'),
    endpoints: req('endpoints'),
    homeRelay: NODE_FIELDS.homeRelay(o.homeRelay, f('homeRelay'), mesh),
    online: req('online'),
    lastSeen: NODE_FIELDS.lastSeen(o.lastSeen, f('lastSeen'), mesh),
    os: NODE_FIELDS.os(o.os, f('os'), mesh)!,
    version: NODE_FIELDS.version(o.version, f('version'), mesh)!,
    keyExpiry: NODE_FIELDS.keyExpiry(o.keyExpiry, f('keyExpiry'), mesh),
    ephemeral: req('ephemeral'),
  };
  if (o.routes !== undefined) view.routes = req('routes');
  if (o.primaryRoutes !== undefined) {
    const primary = req('primaryRoutes');
    const approved = new Set(view.routes ?? []);
    for (const [i, r] of primary.entries()) if (!approved.has(r)) fail(`${f('primaryRoutes')}[${i}]`, `${r} is not among the node's routes`);
    // only a primary route is in allowedIps: WireGuard would otherwise route the prefix to whichever peer came last
    const allowed = new Set(view.allowedIps);
    for (const [i, r] of primary.entries()) if (!allowed.has(r)) fail(`${f('primaryRoutes')}[${i}]`, `${r} is not in the node's allowedIps`);
    view.primaryRoutes = primary;
  }
  if (o.exitNode !== undefined) view.exitNode = req('exitNode');
  if (o.user !== undefined) view.user = req('user');
  if (o.tags !== undefined) {
    const tags = req('tags');
    // a tagged node belongs to no user: its owner is whoever may apply the tag
    if (tags.length > 0 && view.user !== undefined) fail(f('tags'), 'a tagged node has no owner (user and tags are exclusive)');
    view.tags = tags;
  }
  if (o.advertised !== undefined) {
    if (!opts.self) fail(f('advertised'), "only the node's own view carries what it advertises");
    const a = object(o.advertised, f('advertised'));
    view.advertised = { routes: routeList(a.routes, `${f('advertised')}.routes`, mesh), exitNode: bool(a.exitNode, `${f('advertised')}.exitNode`) };
  }
  return view;
}

/**
 * A patch of one peer in a delta: each field it sets is checked as in a whole
 * view; a field the node view does not have, or one both set and removed, is
 * refused. The fields' agreement with each other (primary routes among the
 * routes, user and tags exclusive) is checked once the patch is applied.
 */
function parsePeerPatch(json: unknown, field: string, mesh: IpPrefix[]): PeerPatch {
  const o = object(json, field);
  const set = object(o.set, `${field}.set`);
  const patch: PeerPatch = { id: nodeId(o.id, `${field}.id`), set: {} };
  const out = patch.set as Record<string, unknown>;
  for (const [k, v] of Object.entries(set)) {
    if (!Object.hasOwn(NODE_FIELDS, k)) fail(`${field}.set.${terminalSafe(k, 32)}`, 'not a field a peer patch may set');
    out[k] = NODE_FIELDS[k as PatchableField](v, `${field}.set.${k}`, mesh);
  }
  if (o.unset !== undefined) {
    const unset = list(o.unset, `${field}.unset`, OPTIONAL_PEER_FIELDS.size).map((u, i) => {
      if (typeof u !== 'string' || !OPTIONAL_PEER_FIELDS.has(u)) fail(`${field}.unset[${i}]`, `not an optional peer field: ${shown(u)}`);
      if (Object.hasOwn(out, u)) fail(`${field}.unset[${i}]`, `${u} is both set and removed`);
      return u as OptionalPeerField;
    });
    if (unset.length) patch.unset = unset;
  }
  return patch;
}

function parseRelay(json: unknown, field: string): RelayRegion {
  const o = object(json, field);
  const r: RelayRegion = { code: region(o.code, `${field}.code`), url: httpsUrl(o.url, `${field}.url`), stunPort: port(o.stunPort, `${field}.stunPort`) };
  if (o.certFingerprint !== undefined) {
    if (typeof o.certFingerprint !== 'string' || !/^[0-9a-fA-F]{64}$/.test(o.certFingerprint)) {
      fail(`${field}.certFingerprint`, `not a SHA-256 fingerprint (64 hex digits): ${shown(o.certFingerprint)}`);
    }
    r.certFingerprint = o.certFingerprint.toLowerCase();
  }
  if (o.ipv6 !== undefined) r.ipv6 = ipOf(o.ipv6, 6, `${field}.ipv6`);
  return r;
}

/** A DNS name (lowercased, ASCII only) with at least `minLabels` labels. */
function dnsName(v: unknown, field: string, minLabels: number, max?: number): string {
  const name = typeof v === 'string' ? asciiLower(v) : v;
  const problem = dnsNameProblem(name, minLabels, max);
  if (problem) fail(field, `not a DNS name (${problem}): ${shown(v)}`);
  return name as string;
}

/**
 * A resolver of a split-DNS route: an IP (port 53) or IP:port / [IPv6]:port (a
 * bare IPv6 address has no port, so the two never overlap). `text` keeps the
 * form given, canonical.
 */
export function parseResolverAddress(v: unknown): { address: IpAddress; port: number; text: string } {
  try {
    const address = parseIp(v);
    return { address, port: 53, text: address.text };
  } catch {
    try {
      return parseIpEndpoint(v);
    } catch {
      throw new AddressSyntaxError(`not an IP address or IP:port: ${shown(v)}`);
    }
  }
}

function resolverAddress(v: unknown, field: string): string {
  return wrap(field, () => parseResolverAddress(v).text);
}

function parseDnsRoute(json: unknown, field: string): DnsRoute {
  const o = object(json, field);
  const resolvers = list(o.resolvers, `${field}.resolvers`, MAX_RESOLVERS_PER_ROUTE).map((r, i) => resolverAddress(r, `${field}.resolvers[${i}]`));
  if (resolvers.length === 0) fail(`${field}.resolvers`, 'no resolver');
  return { domain: dnsName(o.domain, `${field}.domain`, 1), resolvers };
}

function parseDnsRecord(json: unknown, field: string): DnsRecord {
  const o = object(json, field);
  if (o.type !== 'A' && o.type !== 'AAAA') fail(`${field}.type`, `expected "A" or "AAAA", got ${shown(o.type)}`);
  const value = wrap(`${field}.value`, () => parseIp(o.value));
  if (value.family !== (o.type === 'A' ? 4 : 6))
    fail(`${field}.value`, `an ${o.type} record needs an IPv${o.type === 'A' ? 4 : 6} address, got ${shown(o.value)}`);
  return { name: dnsName(o.name, `${field}.name`, 1), type: o.type, value: value.text };
}

/**
 * The map's name service. The node's own resolver addresses become local
 * addresses of its interface, so each must lie inside the map's mesh prefixes:
 * a map cannot make a node claim an address outside the mesh.
 */
export function parseDnsConfig(json: unknown, field: string, meshPrefixes: { ipv4: string; ipv6: string }): DnsConfig {
  const o = object(json, field);
  const prefixes = [parsePrefix(meshPrefixes.ipv4), parsePrefix(meshPrefixes.ipv6)];
  const resolvers = list(o.resolvers, `${field}.resolvers`, MAX_DNS_LOCAL_RESOLVERS).map((r, i) => {
    const a = wrap(`${field}.resolvers[${i}]`, () => parseIp(r));
    if (!prefixes.some((p) => prefixContains(p, a))) fail(`${field}.resolvers[${i}]`, `${a.text} is outside the mesh prefixes`);
    return a;
  });
  if (resolvers.length === 0) fail(`${field}.resolvers`, 'no resolver address');
  if (new Set(resolvers.map((a) => a.family)).size !== resolvers.length) fail(`${field}.resolvers`, 'at most one address per family');
  const routes = list(o.routes, `${field}.routes`, MAX_DNS_ROUTES).map((r, i) => parseDnsRoute(r, `${field}.routes[${i}]`));
  const domains = new Set<string>();
  for (const [i, r] of routes.entries()) {
    if (domains.has(r.domain)) fail(`${field}.routes[${i}].domain`, `${shown(r.domain)} has two routes`);
    domains.add(r.domain);
  }
  return {
    suffix: dnsName(o.suffix, `${field}.suffix`, 2, MAX_DNS_SUFFIX_CHARS),
    resolvers: resolvers.map((a) => a.text),
    routes,
    records: list(o.records, `${field}.records`, MAX_DNS_RECORDS).map((r, i) => parseDnsRecord(r, `${field}.records[${i}]`)),
  };
}

/**
 * One device on stock WireGuard. Its addresses lie inside the mesh prefixes
 * (one per family), its gateway is a node of this map, and its public key is
 * only in the gateway's own map (`selfName` is the receiving node's name).
 */
function parseDevice(json: unknown, field: string, mesh: IpPrefix[], nodeNames: Set<string> | null, selfName: string | null): DeviceView {
  const o = object(json, field);
  const f = (name: string): string => `${field}.${name}`;
  if (typeof o.id !== 'number' || !Number.isSafeInteger(o.id) || o.id < 0) fail(f('id'), `not a device id: ${shown(o.id)}`);
  const addresses = list(o.addresses, f('addresses'), MAX_ADDRESSES_PER_DEVICE).map((a, i) => {
    const ad = wrap(`${f('addresses')}[${i}]`, () => parseIp(a));
    if (!mesh.some((p) => prefixContains(p, ad))) fail(`${f('addresses')}[${i}]`, `${ad.text} is outside the mesh prefixes`);
    return ad;
  });
  if (addresses.length === 0) fail(f('addresses'), 'no address');
  if (new Set(addresses.map((a) => a.family)).size !== addresses.length) fail(f('addresses'), 'at most one address per family');
  const gateway = text(o.gateway, f('gateway'), MAX_NAME_CHARS);
  if (nodeNames && !nodeNames.has(gateway)) fail(f('gateway'), `${shown(gateway)} is not a node of this map`);
  const device: DeviceView = { id: o.id, name: dnsName(o.name, f('name'), 1, MAX_DNS_LABEL_CHARS), addresses: addresses.map((a) => a.text), gateway };
  if (device.name.includes('.')) fail(f('name'), `a device name is one DNS label: ${shown(o.name)}`);
  if (o.publicKey !== undefined) {
    if (selfName !== null && gateway !== selfName) fail(f('publicKey'), "only the gateway's own map carries a device's key");
    device.publicKey = key(o.publicKey, f('publicKey'));
  }
  return device;
}

/** A prefix in canonical form: host bits clear, address text canonical. */
function canonicalPrefix(v: unknown, field: string): string {
  const p = wrap(field, () => parsePrefix(v));
  const canon = maskedPrefix(p).text;
  if (canon !== p.text) fail(field, `${p.text} has host bits set: the prefix is ${canon}`);
  return p.text;
}

function portNumber(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) fail(field, `not a port (0-65535): ${shown(v)}`);
  return v;
}

function parseFilterDestination(json: unknown, field: string): FilterDestination {
  const o = object(json, field);
  const ip = canonicalPrefix(o.ip, `${field}.ip`);
  const first = portNumber(o.first, `${field}.first`);
  const last = portNumber(o.last, `${field}.last`);
  if (first > last) fail(field, `port range ${first}-${last} is empty (first > last)`);
  return { ip, first, last };
}

/** One packet-filter rule: canonical source prefixes, destinations with port ranges, distinct IANA protocol numbers. */
export function parseFilterRule(json: unknown, field: string): FilterRule {
  const o = object(json, field);
  const srcIps = list(o.srcIps, `${field}.srcIps`, MAX_FILTER_SOURCES).map((s, i) => canonicalPrefix(s, `${field}.srcIps[${i}]`));
  if (srcIps.length === 0) fail(`${field}.srcIps`, 'no source (a rule that matches nothing is left out, not sent)');
  const dstPorts = list(o.dstPorts, `${field}.dstPorts`, MAX_FILTER_DESTINATIONS).map((d, i) => parseFilterDestination(d, `${field}.dstPorts[${i}]`));
  if (dstPorts.length === 0) fail(`${field}.dstPorts`, 'no destination');
  const protocols = list(o.protocols, `${field}.protocols`, MAX_FILTER_PROTOCOLS).map((p, i) => {
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 255) fail(`${field}.protocols[${i}]`, `not an IP protocol number (0-255): ${shown(p)}`);
    return p;
  });
  if (new Set(protocols).size !== protocols.length) fail(`${field}.protocols`, 'a protocol is listed twice');
  return { srcIps, dstPorts, protocols };
}

/** A whole network map; throws MapParseError naming the first bad field. */
export function parseNetworkMap(json: unknown): NetworkMap {
  const o = object(json, 'map');
  const ipv4Prefix = meshPrefix(o.ipv4Prefix, 'ipv4Prefix', 4);
  const ipv6Prefix = meshPrefix(o.ipv6Prefix, 'ipv6Prefix', 6);
  const mesh = { ipv4: ipv4Prefix, ipv6: ipv6Prefix };
  const self = parseNodeView(o.self, 'self', { self: true, mesh });
  const peers = list(o.peers, 'peers', MAX_PEERS).map((p, i) => parseNodeView(p, `peers[${i}]`, { mesh }));
  const relays = o.relays === undefined ? [] : list(o.relays, 'relays', MAX_RELAYS).map((r, i) => parseRelay(r, `relays[${i}]`));
  const map: NetworkMap = { self, peers, ipv4Prefix, ipv6Prefix, relays };
  if (o.dns !== undefined) map.dns = parseDnsConfig(o.dns, 'dns', mesh);
  if (o.devices !== undefined) map.devices = parseDevices(o.devices, 'devices', map);
  if (o.packetFilter !== undefined) {
    map.packetFilter = list(o.packetFilter, 'packetFilter', MAX_FILTER_RULES).map((r, i) => parseFilterRule(r, `packetFilter[${i}]`));
  }
  return map;
}

/**
 * The devices of a map, checked against its nodes: each gateway is a node of
 * the map, only the receiving node's own devices carry keys, and no device
 * takes a node's or another device's name.
 */
export function parseDevices(json: unknown, field: string, map: Pick<NetworkMap, 'self' | 'peers' | 'ipv4Prefix' | 'ipv6Prefix'>): DeviceView[] {
  const mesh = [parsePrefix(map.ipv4Prefix), parsePrefix(map.ipv6Prefix)];
  const nodeNames = new Set([map.self.name, ...map.peers.map((p) => p.name)]);
  const devices = list(json, field, MAX_DEVICES).map((d, i) => parseDevice(d, `${field}[${i}]`, mesh, nodeNames, map.self.name));
  const names = new Set<string>();
  for (const [i, d] of devices.entries()) {
    if (names.has(d.name) || nodeNames.has(d.name)) fail(`${field}[${i}].name`, `${shown(d.name)} is taken by another node or device`);
    names.add(d.name);
  }
  return devices;
}

/** Entries of one kind in a delta: a delta never carries more peers than a map may hold. */
export const MAX_DELTA_ENTRIES = MAX_PEERS;

function seqNumber(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(field, `not a map sequence number: ${shown(v)}`);
  return v;
}

/**
 * A delta of the map stream, checked with the same rules as a whole map
 * (`mesh`: the prefixes of the map it applies to). Devices are checked here
 * for their own fields and against the map's nodes once applied (netmap/delta.ts).
 * A peer named twice (added, patched or removed) is refused.
 */
export function parseMapDelta(json: unknown, mesh: MeshPrefixes): MapDelta {
  const o = object(json, 'delta');
  const delta: MapDelta = { seq: seqNumber(o.seq, 'delta.seq'), base: seqNumber(o.base, 'delta.base') };
  if (delta.seq <= delta.base) fail('delta.seq', `${delta.seq} does not follow its base ${delta.base}`);
  const prefixes = meshList(mesh);
  if (o.self !== undefined) delta.self = parseNodeView(o.self, 'delta.self', { self: true, mesh });
  const named = new Set<number>();
  const once = (id: number, field: string): void => {
    if (named.has(id)) fail(field, `peer ${id} is named twice in one delta`);
    named.add(id);
  };
  if (o.peers !== undefined) {
    delta.peers = list(o.peers, 'delta.peers', MAX_DELTA_ENTRIES).map((p, i) => parseNodeView(p, `delta.peers[${i}]`, { mesh }));
    for (const [i, p] of delta.peers.entries()) once(p.id, `delta.peers[${i}].id`);
  }
  if (o.patches !== undefined) {
    delta.patches = list(o.patches, 'delta.patches', MAX_DELTA_ENTRIES).map((p, i) => parsePeerPatch(p, `delta.patches[${i}]`, prefixes));
    for (const [i, p] of delta.patches.entries()) once(p.id, `delta.patches[${i}].id`);
  }
  if (o.removed !== undefined) {
    delta.removed = list(o.removed, 'delta.removed', MAX_DELTA_ENTRIES).map((id, i) => nodeId(id, `delta.removed[${i}]`));
    for (const [i, id] of delta.removed.entries()) once(id, `delta.removed[${i}]`);
  }
  if (o.relays !== undefined) delta.relays = list(o.relays, 'delta.relays', MAX_RELAYS).map((r, i) => parseRelay(r, `delta.relays[${i}]`));
  if (o.dns !== undefined) delta.dns = o.dns === null ? null : parseDnsConfig(o.dns, 'delta.dns', mesh);
  if (o.devices !== undefined) {
    delta.devices = list(o.devices, 'delta.devices', MAX_DEVICES).map((d, i) => parseDevice(d, `delta.devices[${i}]`, prefixes, null, null));
  }
  if (o.packetFilter !== undefined) {
    delta.packetFilter =
      o.packetFilter === null
        ? null
        : list(o.packetFilter, 'delta.packetFilter', MAX_FILTER_RULES).map((r, i) => parseFilterRule(r, `delta.packetFilter[${i}]`));
  }
  if (o.filterPatch !== undefined) {
    if (o.packetFilter !== undefined) fail('delta.filterPatch', 'a delta carries a whole packet filter or a patch of it, not both');
    delta.filterPatch = parseFilterPatch(o.filterPatch, 'delta.filterPatch');
  }
  return delta;
}

/** A filter patch (netmap/filter-patch.ts): rule positions ascending and within the rule count, source positions ascending. */
function parseFilterPatch(json: unknown, field: string): FilterPatch {
  const o = object(json, field);
  const rules = o.rules;
  if (typeof rules !== 'number' || !Number.isSafeInteger(rules) || rules < 0 || rules > MAX_FILTER_RULES)
    fail(`${field}.rules`, `not a rule count: ${shown(rules)}`);
  let last = -1;
  const edits = list(o.edits, `${field}.edits`, MAX_FILTER_RULES).map((json, n): FilterRuleEdit => {
    const f = `${field}.edits[${n}]`;
    const e = object(json, f);
    const i = e.i;
    if (typeof i !== 'number' || !Number.isSafeInteger(i) || i <= last || i >= rules)
      fail(`${f}.i`, `not a rule position after ${last} and below ${rules}: ${shown(i)}`);
    last = i;
    if (e.rule !== undefined) {
      if (e.remove !== undefined || e.add !== undefined) fail(f, 'an edit carries a whole rule or a change of its sources, not both');
      return { i, rule: parseFilterRule(e.rule, `${f}.rule`) };
    }
    const edit: FilterRuleEdit = { i };
    if (e.remove !== undefined) edit.remove = list(e.remove, `${f}.remove`, MAX_FILTER_SOURCES).map((s, k) => canonicalPrefix(s, `${f}.remove[${k}]`));
    if (e.add !== undefined) {
      let pos = -1;
      edit.add = list(e.add, `${f}.add`, MAX_FILTER_SOURCES).map((a, k): [number, string] => {
        const pair = list(a, `${f}.add[${k}]`, 2);
        const at = pair[0];
        if (pair.length !== 2 || typeof at !== 'number' || !Number.isSafeInteger(at) || at <= pos || at >= MAX_FILTER_SOURCES) {
          fail(`${f}.add[${k}]`, `not a [position, prefix] pair with the position after ${pos}: ${shown(a)}`);
        }
        pos = at;
        return [at, canonicalPrefix(pair[1], `${f}.add[${k}][1]`)];
      });
    }
    if (!edit.remove && !edit.add) fail(f, 'an edit with neither a rule nor a change of its sources');
    return edit;
  });
  return { rules, edits };
}

/** The answer to a register request. */
export function parseRegisterResult(json: unknown): RegisterResult {
  const o = object(json, 'register result');
  const ipv4Prefix = meshPrefix(o.ipv4Prefix, 'ipv4Prefix', 4);
  const ipv6Prefix = meshPrefix(o.ipv6Prefix, 'ipv6Prefix', 6);
  return { node: parseNodeView(o.node, 'node', { self: true, mesh: { ipv4: ipv4Prefix, ipv6: ipv6Prefix } }), ipv4Prefix, ipv6Prefix };
}

/** The two mesh prefixes as stored beside a node (state.json). */
export function parseMeshPrefix(json: unknown, field: string, family: IpFamily): string {
  return meshPrefix(json, field, family);
}

/**
 * One line of the map stream, already JSON-decoded: a map, a delta, a
 * keepalive, `gone`, or null for a type this node does not know (ignored).
 * `mesh` is the prefixes of the map the node holds: a delta is refused
 * without one (it applies only on top of a map).
 */
export function parseMapLine(json: unknown, mesh?: MeshPrefixes): MapLine | null {
  const o = object(json, 'line');
  if (o.type === 'map') {
    const map = parseNetworkMap(o.map);
    return o.seq === undefined ? { type: 'map', map } : { type: 'map', map, seq: seqNumber(o.seq, 'seq') };
  }
  if (o.type === 'delta') {
    if (!mesh) fail('delta', 'a delta came before any whole map');
    return { type: 'delta', delta: parseMapDelta(o.delta, mesh) };
  }
  if (o.type === 'keepalive') return { type: 'keepalive' };
  if (o.type === 'gone') {
    if (o.reason !== 'NODE_UNKNOWN' && o.reason !== 'NODE_EXPIRED') fail('reason', `not a known reason: ${shown(o.reason)}`);
    return { type: 'gone', reason: o.reason };
  }
  return null;
}
