// The network's name service at the control server: the suffix every node's
// name gets, split-DNS routes and extra records, checked here as the operator
// gives them and sent to every node in its map (`dns`). The operator's
// operations run inside the server (admin socket) or on the database directly,
// like the node operations in admin-ops.ts.
import { resolverAddresses } from './addresses.js';
import { ControlError } from './protocol.js';
import type { Registry } from './registry.js';
import type { DnsRecordRecord, DnsRouteRecord, StoreTx } from './store.js';
import {
  asciiLower,
  DEFAULT_DNS_SUFFIX,
  dnsNameProblem,
  dnsSuffixProblem,
  isAtOrUnder,
  MAX_DNS_RECORDS,
  MAX_DNS_ROUTES,
  MAX_RESOLVERS_PER_ROUTE,
} from '../netmap/dns-names.js';
import { parseResolverAddress } from '../netmap/parse.js';
import type { DnsConfig } from '../netmap/types.js';
import { parseIp } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';

/** The meta key the suffix is kept under, so it survives restarts. */
const SUFFIX_META_KEY = 'dns_suffix';

const quoted = (s: string): string => JSON.stringify(terminalSafe(s, 80));

function bad(message: string): never {
  throw new ControlError('BAD_REQUEST', message);
}

/** A suffix as the operator typed it, lowercased; a bad one throws a BAD_REQUEST naming the cause and the fix. */
export function checkDnsSuffix(text: string): string {
  const problem = dnsSuffixProblem(text);
  if (problem) bad(`DNS suffix ${quoted(text)}: ${problem}; use a name such as ${DEFAULT_DNS_SUFFIX}`);
  return asciiLower(text);
}

function checkName(text: string, what: string, example: string): string {
  const s = asciiLower(text);
  const problem = dnsNameProblem(s, 1);
  if (problem) bad(`${what} ${quoted(text)}: ${problem}; use a name such as ${example}`);
  return s;
}

/** The stored suffix, or the default when none was ever set. */
export async function dnsSuffix(store: StoreTx): Promise<string> {
  return (await store.getMeta(SUFFIX_META_KEY)) ?? DEFAULT_DNS_SUFFIX;
}

/**
 * Sets the suffix at server start (`--dns-suffix`) when given, else keeps the
 * stored one; returns the suffix in force and the one it replaced, if any.
 */
export async function applyDnsSuffix(store: StoreTx, wanted: string | undefined): Promise<{ suffix: string; replaced: string | null }> {
  const old = await store.getMeta(SUFFIX_META_KEY);
  if (wanted === undefined) return { suffix: old ?? DEFAULT_DNS_SUFFIX, replaced: null };
  const suffix = checkDnsSuffix(wanted);
  if (suffix !== old) await store.setMeta(SUFFIX_META_KEY, suffix);
  return { suffix, replaced: old !== null && old !== suffix ? old : null };
}

/** The network's name service as stored: the map's dns field before node names are taken into account. */
export async function loadDns(store: StoreTx, ipv6Prefix: string): Promise<DnsConfig> {
  const [suffix, routes, records] = await Promise.all([dnsSuffix(store), store.listDnsRoutes(), store.listDnsRecords()]);
  return { suffix, resolvers: resolverAddresses(ipv6Prefix), routes, records };
}

/**
 * The map's dns field. A record whose name is a node's full name is left out:
 * the node wins (a node may join with a name after the record was added; the
 * record comes back when the node leaves). Routes at or under the suffix are
 * left out too (the suffix changed under them): mesh names are always answered
 * by the node's own resolver.
 */
export function dnsForMap(stored: DnsConfig, nodeNames: Iterable<string>): DnsConfig {
  const { suffix } = stored;
  const taken = new Set([...nodeNames].map((n) => `${n}.${suffix}`));
  return {
    suffix,
    resolvers: stored.resolvers,
    routes: stored.routes.filter((r) => !isAtOrUnder(r.domain, suffix)),
    records: stored.records.filter((r) => !taken.has(r.name)),
  };
}

export interface DnsShow extends DnsConfig {
  /** records stored but not in maps, because a node has that name */
  shadowedRecords: DnsRecordRecord[];
}

export function showDns(r: Registry): DnsShow {
  const stored = r.storedDns();
  const c = dnsForMap(
    stored,
    r.nodes().map((n) => n.hostname),
  );
  const inMap = new Set(c.records.map((x) => `${x.name} ${x.type} ${x.value}`));
  return { ...c, shadowedRecords: stored.records.filter((x) => !inMap.has(`${x.name} ${x.type} ${x.value}`)) };
}

/**
 * Adds a split-DNS route, or replaces the resolvers of an existing one. The
 * domain may not be the suffix or under it; it may be a parent of it (names
 * under the suffix are still answered by the nodes, the longest match wins).
 */
export async function addDnsRoute(
  r: Registry,
  domainText: string,
  resolverTexts: string[],
): Promise<{ domain: string; resolvers: string[]; replaced: boolean }> {
  const domain = checkName(domainText, 'route domain', 'corp.example');
  const suffix = await dnsSuffix(r.store);
  // a parent of the suffix is allowed (route corp.example with mesh.corp.example as the suffix): mesh names stay the nodes' own
  if (isAtOrUnder(domain, suffix))
    bad(`route domain ${domain} is inside the mesh suffix ${suffix}: mesh names are answered by each node; route a domain outside it`);
  if (resolverTexts.length === 0 || resolverTexts.length > MAX_RESOLVERS_PER_ROUTE) {
    bad(`a route needs 1 to ${MAX_RESOLVERS_PER_ROUTE} resolvers (MAX_RESOLVERS_PER_ROUTE), got ${resolverTexts.length}`);
  }
  const own = new Set(resolverAddresses(r.ipv6Prefix));
  const resolvers = resolverTexts.map((t) => {
    let a: ReturnType<typeof parseResolverAddress>;
    try {
      a = parseResolverAddress(t);
    } catch {
      bad(`resolver ${quoted(t)} is not an IP address or IP:port (e.g. 10.1.2.3, 10.1.2.3:5353, [fd00::1]:53)`);
    }
    if (own.has(a.address.text)) bad(`resolver ${a.text} is the nodes' own resolver: a route to it would loop; give the domain's real resolver`);
    return a.text;
  });
  if (new Set(resolvers).size !== resolvers.length) bad('the same resolver is given twice: list each once');
  return r.store.transaction(async (tx) => {
    const routes = await tx.listDnsRoutes();
    const exists = routes.some((x) => x.domain === domain);
    if (!exists && routes.length >= MAX_DNS_ROUTES) {
      bad(`already ${MAX_DNS_ROUTES} DNS routes (MAX_DNS_ROUTES): remove one with \`meshctl control dns route remove DOMAIN\` first`);
    }
    const route: DnsRouteRecord = { domain, resolvers };
    const added = await tx.putDnsRoute(route);
    return { ...route, replaced: !added };
  });
}

export async function removeDnsRoute(r: Registry, domainText: string): Promise<{ domain: string }> {
  const domain = asciiLower(domainText);
  if (!(await r.store.deleteDnsRoute(domain))) throw new ControlError('NOT_FOUND', `no DNS route for ${quoted(domainText)}: see \`meshctl control dns show\``);
  return { domain };
}

/**
 * Adds an A or AAAA record (the type follows the address). A name that is a
 * node's full name (NAME.suffix) is refused: node names come first.
 */
export async function addDnsRecord(r: Registry, nameText: string, addrText: string): Promise<DnsRecordRecord & { added: boolean }> {
  const name = checkName(nameText, 'record name', 'nas.home.arpa');
  let value: ReturnType<typeof parseIp>;
  try {
    value = parseIp(addrText);
  } catch {
    bad(`record address ${quoted(addrText)} is not an IPv4 or IPv6 address (e.g. 100.64.0.5 or fd00::5)`);
  }
  const suffix = await dnsSuffix(r.store);
  const node = r.nodes().find((n) => `${n.hostname}.${suffix}` === name);
  if (node) bad(`${name} is node ${node.hostname}'s name (node names win): pick another name, or rename the node`);
  const rec: DnsRecordRecord = { name, type: value.family === 4 ? 'A' : 'AAAA', value: value.text };
  return r.store.transaction(async (tx) => {
    const all = await tx.listDnsRecords();
    const exists = all.some((x) => x.name === rec.name && x.type === rec.type && x.value === rec.value);
    if (!exists && all.length >= MAX_DNS_RECORDS) {
      bad(`already ${MAX_DNS_RECORDS} DNS records (MAX_DNS_RECORDS): remove some with \`meshctl control dns record remove NAME\` first`);
    }
    const added = await tx.insertDnsRecord(rec);
    return { ...rec, added };
  });
}

/** Removes the name's records, or only the one with that address. */
export async function removeDnsRecord(r: Registry, nameText: string, addrText?: string): Promise<{ name: string; removed: number }> {
  const name = asciiLower(nameText);
  let value: string | undefined;
  if (addrText !== undefined) {
    try {
      value = parseIp(addrText).text;
    } catch {
      bad(`record address ${quoted(addrText)} is not an IPv4 or IPv6 address`);
    }
  }
  const removed = await r.store.deleteDnsRecords(name, value);
  if (removed === 0) {
    throw new ControlError('NOT_FOUND', `no DNS record ${quoted(nameText)}${addrText ? ` with ${quoted(addrText)}` : ''}: see \`meshctl control dns show\``);
  }
  return { name, removed };
}
