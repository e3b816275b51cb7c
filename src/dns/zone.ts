// The mesh's names as one immutable value built from the network map: A and
// AAAA for this node, every peer (offline ones too) and every device at NAME.suffix, PTR for
// every mesh address, the extra records and the split-DNS routes control sends.
// The resolver answers names under the suffix and the reverse names of the
// mesh prefixes itself (NXDOMAIN for what the map lacks), so they never leave
// the node; every other name goes to a split route's resolvers or upstream.
// The map is control's and so is checked here: a name, address or route that
// does not parse is left out and reported in `problems`, never served.
import type { NetworkMap } from '../netmap/types.js';
import { ipBytes, parseIp, parseIpEndpoint, parsePrefix, sameLeadingBits, type IpEndpoint, type IpPrefix } from '../util/netaddr.js';
import { canonicalName, isAtOrUnder, isHostName, parseReverseName, reverseName } from './names.js';

/**
 * TTL of every mesh answer, seconds. Short so that a rename, join or deletion
 * reaches clients that cache (glibc does not, systemd-resolved and browsers do)
 * within seconds; long enough that a burst of lookups (a browser opening a page)
 * costs one query. Answers from this node's memory cost microseconds, so a short
 * TTL is cheap.
 */
export const MESH_TTL_S = 10;
/** How long a client may cache "no such name" (the SOA minimum, RFC 2308): as short as positive answers, so a join is seen as quickly. */
export const NEGATIVE_TTL_S = 10;
/** Extra records served at most: far more than a household or office names by hand, and a bound on the zone's memory whatever control sends. */
export const MAX_EXTRA_RECORDS = 4096;
/** Split-DNS routes used at most: each is a suffix lookup per forwarded query. */
export const MAX_ROUTES = 256;
/** Resolvers per split route used at most: each one tried is up to the per-try timeout, within the forwarder's total bound. */
export const MAX_ROUTE_RESOLVERS = 4;
/** The standard DNS port, for route resolvers given as a bare IP. */
export const DNS_PORT = 53;

export type ZoneRecordType = 'A' | 'AAAA' | 'PTR';

export interface ZoneRecord {
  type: ZoneRecordType;
  ttl: number;
  /** an address for A and AAAA, a canonical name (no trailing dot) for PTR */
  data: string;
}

export interface ZoneSoa {
  /** the zone's apex: the suffix, or the reverse name of a mesh prefix */
  zone: string;
  ttl: number;
  data: { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };
}

/** The zone's answer to a name it holds authority for. */
export interface ZoneAnswer {
  rcode: 'NOERROR' | 'NXDOMAIN';
  /** empty with NOERROR: the name exists, not with this type (NODATA) */
  answers: ZoneRecord[];
  /** for the authority section of a negative answer; null for extra records outside the suffix */
  soa: ZoneSoa | null;
  /** the question asked for the SOA of the zone's apex: the SOA is the answer */
  soaIsAnswer?: boolean;
}

export interface Zone {
  /** the mesh suffix, canonical; null when the map carries none (or an invalid one) */
  readonly suffix: string | null;
  /** names with records */
  readonly names: number;
  /** what the map held that was left out, one line each */
  readonly problems: readonly string[];
  /** The answer for a canonical name the zone holds authority for; null for a name to forward. */
  lookup(name: string, type: string): ZoneAnswer | null;
  /** The resolvers of the longest split-DNS route the canonical name falls under; null when none does. */
  routeFor(name: string): readonly IpEndpoint[] | null;
}

interface Names {
  A: string[];
  AAAA: string[];
  PTR: string[];
}

interface ReverseZone {
  prefix: IpPrefix;
  bytes: Buffer;
  apex: string;
}

function soaFor(apex: string, suffix: string | null): ZoneSoa {
  const host = suffix ?? apex;
  return {
    zone: apex,
    ttl: NEGATIVE_TTL_S,
    // a fixed serial: nothing transfers this zone, the SOA only carries the negative TTL
    data: { mname: host, rname: `hostmaster.${host}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: NEGATIVE_TTL_S },
  };
}

/** The reverse name of a prefix cut to whole labels (octets or nibbles) that still contain it. */
function reverseApex(p: IpPrefix): string {
  const full = reverseName(p.address).split('.');
  const kept = p.address.family === 4 ? Math.floor(p.bits / 8) : Math.floor(p.bits / 4);
  // the last two labels are in-addr.arpa or ip6.arpa
  const labels = full.length - 2;
  return full.slice(labels - kept).join('.');
}

function parseResolver(text: string): IpEndpoint {
  try {
    const address = parseIp(text);
    return { address, port: DNS_PORT, text: address.family === 6 ? `[${address.text}]:${DNS_PORT}` : `${address.text}:${DNS_PORT}` };
  } catch {
    return parseIpEndpoint(text);
  }
}

class MapZone implements Zone {
  readonly suffix: string | null;
  readonly problems: string[] = [];
  private readonly records = new Map<string, Names>();
  /** names under an authoritative zone that exist only because names below them do (empty non-terminals) */
  private readonly interior = new Set<string>();
  private readonly reverse: ReverseZone[] = [];
  private readonly routes = new Map<string, IpEndpoint[]>();

  constructor(map: NetworkMap) {
    const dns = map.dns;
    const suffix = dns ? canonicalName(String(dns.suffix ?? '')) : '';
    this.suffix = dns && isHostName(suffix) ? suffix : null;
    if (dns && !this.suffix) this.problems.push(`dns.suffix ${JSON.stringify(dns.suffix)} is not a domain name: no mesh names served`);
    for (const text of [map.ipv4Prefix, map.ipv6Prefix]) {
      try {
        const prefix = parsePrefix(text);
        this.reverse.push({ prefix, bytes: ipBytes(prefix.address), apex: reverseApex(prefix) });
      } catch (err) {
        this.problems.push(`mesh prefix: ${(err as Error).message}`);
      }
    }
    if (this.suffix) {
      for (const node of [map.self, ...map.peers]) this.addNode(node.name, node.addresses, this.suffix);
      // devices on stock WireGuard share the node namespace: NAME.suffix and PTR the same way
      for (const d of map.devices ?? []) this.addNode(d.name, d.addresses, this.suffix);
    }
    const records = dns?.records ?? [];
    if (records.length > MAX_EXTRA_RECORDS) this.problems.push(`${records.length} extra records: only the first ${MAX_EXTRA_RECORDS} are served`);
    for (const r of records.slice(0, MAX_EXTRA_RECORDS)) this.addRecord(r.name, r.type, r.value);
    const routes = dns?.routes ?? [];
    if (routes.length > MAX_ROUTES) this.problems.push(`${routes.length} DNS routes: only the first ${MAX_ROUTES} are used`);
    for (const r of routes.slice(0, MAX_ROUTES)) this.addRoute(r.domain, r.resolvers);
  }

  get names(): number {
    return this.records.size;
  }

  private entry(name: string): Names {
    let e = this.records.get(name);
    if (!e) {
      e = { A: [], AAAA: [], PTR: [] };
      this.records.set(name, e);
    }
    return e;
  }

  /** Marks the names between `name` and the apex `zone` (both excluded) as existing. */
  private addInterior(name: string, zone: string): void {
    let n = name;
    for (;;) {
      const dot = n.indexOf('.');
      if (dot < 0) return;
      n = n.slice(dot + 1);
      if (n.length <= zone.length) return;
      this.interior.add(n);
    }
  }

  private addNode(rawName: string, addresses: readonly string[], suffix: string): void {
    const label = canonicalName(String(rawName));
    const fqdn = `${label}.${suffix}`;
    if (label.includes('.') || !isHostName(fqdn)) {
      this.problems.push(`node name ${JSON.stringify(rawName)} is not a DNS label: not served`);
      return;
    }
    for (const text of addresses) {
      let ip: ReturnType<typeof parseIp>;
      try {
        ip = parseIp(text);
      } catch {
        this.problems.push(`node ${label}: address ${JSON.stringify(text)} is not an IP address`);
        continue;
      }
      const e = this.entry(fqdn);
      const list = ip.family === 4 ? e.A : e.AAAA;
      if (!list.includes(ip.text)) list.push(ip.text);
      const rev = reverseName(ip);
      const zone = this.reverseZoneOf(rev);
      if (!zone) continue;
      const r = this.entry(rev);
      if (!r.PTR.includes(fqdn)) r.PTR.push(fqdn);
      this.addInterior(rev, zone.apex);
    }
  }

  private addRecord(rawName: string, type: string, value: string): void {
    const name = canonicalName(String(rawName));
    if (!isHostName(name)) {
      this.problems.push(`extra record ${JSON.stringify(rawName)}: not a domain name`);
      return;
    }
    let ip: ReturnType<typeof parseIp>;
    try {
      ip = parseIp(value);
    } catch {
      this.problems.push(`extra record ${name}: value ${JSON.stringify(value)} is not an IP address`);
      return;
    }
    if ((type === 'A') !== (ip.family === 4) || (type !== 'A' && type !== 'AAAA')) {
      this.problems.push(`extra record ${name}: type ${JSON.stringify(type)} does not fit ${ip.text}`);
      return;
    }
    const e = this.entry(name);
    const list = type === 'A' ? e.A : e.AAAA;
    if (!list.includes(ip.text)) list.push(ip.text);
    if (this.suffix && isAtOrUnder(name, this.suffix)) this.addInterior(name, this.suffix);
  }

  private addRoute(rawDomain: string, resolvers: readonly string[]): void {
    const domain = canonicalName(String(rawDomain));
    if (!isHostName(domain)) {
      this.problems.push(`DNS route ${JSON.stringify(rawDomain)}: not a domain name`);
      return;
    }
    if (this.suffix && isAtOrUnder(domain, this.suffix)) {
      this.problems.push(`DNS route ${domain}: inside the mesh suffix, which this node answers itself`);
      return;
    }
    const list: IpEndpoint[] = [];
    for (const text of resolvers.slice(0, MAX_ROUTE_RESOLVERS)) {
      try {
        list.push(parseResolver(text));
      } catch {
        this.problems.push(`DNS route ${domain}: resolver ${JSON.stringify(text)} is not an IP or IP:port`);
      }
    }
    if (resolvers.length > MAX_ROUTE_RESOLVERS) this.problems.push(`DNS route ${domain}: only the first ${MAX_ROUTE_RESOLVERS} resolvers are used`);
    if (list.length) this.routes.set(domain, list);
  }

  private reverseZoneOf(name: string): ReverseZone | null {
    const p = parseReverseName(name);
    if (!p) return null;
    for (const z of this.reverse) {
      if (z.prefix.address.family === p.family && p.bits >= z.prefix.bits && sameLeadingBits(p.bytes, z.bytes, z.prefix.bits)) return z;
    }
    return null;
  }

  lookup(name: string, type: string): ZoneAnswer | null {
    let soa: ZoneSoa | null = null;
    if (this.suffix && isAtOrUnder(name, this.suffix)) soa = soaFor(this.suffix, this.suffix);
    else {
      const z = this.reverseZoneOf(name);
      if (z) soa = soaFor(z.apex, this.suffix);
      else if (!this.records.has(name)) return null;
    }
    const e = this.records.get(name);
    if (!e) {
      const apex = soa?.zone === name;
      if (apex && type === 'SOA') return { rcode: 'NOERROR', answers: [], soa, soaIsAnswer: true };
      return { rcode: apex || this.interior.has(name) ? 'NOERROR' : 'NXDOMAIN', answers: [], soa };
    }
    const answers: ZoneRecord[] = [];
    const add = (t: ZoneRecordType): void => {
      for (const data of e[t]) answers.push({ type: t, ttl: MESH_TTL_S, data });
    };
    if (type === 'A' || type === 'AAAA' || type === 'PTR') add(type);
    else if (type === 'ANY') add('A'), add('AAAA'), add('PTR');
    return { rcode: 'NOERROR', answers, soa };
  }

  routeFor(name: string): readonly IpEndpoint[] | null {
    let n = name;
    for (;;) {
      const r = this.routes.get(n);
      if (r) return r;
      const dot = n.indexOf('.');
      if (dot < 0) return null;
      n = n.slice(dot + 1);
    }
  }
}

/** The zone a network map describes (pure: the same map gives the same zone). */
export function buildZone(map: NetworkMap): Zone {
  return new MapZone(map);
}
