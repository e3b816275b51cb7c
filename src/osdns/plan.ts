// What the daemon asks of the host's resolver, checked before any of it
// reaches a file or an argv: interface names, server addresses and domain
// names come from the control server's map and are treated as hostile.
import { parseIp } from '../util/netaddr.js';

/** What to configure: the mesh resolver's addresses, the search suffix(es) and the split-DNS domains. */
export interface OsDnsPlan {
  /** the mesh interface (resolved mode configures this link) */
  ifname: string;
  /** the daemon's own resolver addresses, e.g. 100.100.100.100 and the network's ::53 */
  servers: string[];
  /** search domains (the mesh suffix): bare names get it appended */
  searchDomains: string[];
  /** split-DNS domains sent to the mesh resolver (resolved mode; direct mode sends everything there anyway) */
  routingDomains: string[];
}

/** glibc reads at most 3 nameserver lines (MAXNS); more would be silently ignored. */
export const MAX_PLAN_SERVERS = 3;
/** Every bare-name lookup tries each search domain in turn: a long list multiplies the queries of every miss. */
export const MAX_PLAN_SEARCH_DOMAINS = 8;
/** One routing domain per split-DNS route; bounds the argv of one resolvectl call. */
export const MAX_PLAN_ROUTING_DOMAINS = 256;
/** RFC 1035: 255 octets on the wire, so 253 characters of text without the trailing dot. */
export const MAX_DOMAIN_CHARS = 253;
/** Linux IFNAMSIZ (16) minus the terminating NUL. */
export const MAX_IFNAME_CHARS = 15;

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A domain of LDH labels (letters, digits, inner hyphens), lowercased, without a trailing dot. Throws. */
export function parseDomain(text: unknown): string {
  const shown = JSON.stringify(typeof text === 'string' ? text.slice(0, 64) : typeof text);
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_DOMAIN_CHARS)
    throw new Error(`not a domain name: ${shown} (1-${MAX_DOMAIN_CHARS} characters of letters, digits, hyphens and dots)`);
  const lower = text.toLowerCase();
  if (!lower.split('.').every((l) => LABEL.test(l)))
    throw new Error(`not a domain name: ${shown} (each dot-separated label is 1-63 letters, digits or inner hyphens)`);
  return lower;
}

/** An interface name safe as one argv element: it cannot start with `-` (an option) and holds no space or control. */
export function parseIfname(text: unknown): string {
  if (typeof text !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(text) || text.length > MAX_IFNAME_CHARS)
    throw new Error(`not an interface name: ${JSON.stringify(String(text).slice(0, 32))} (1-${MAX_IFNAME_CHARS} of A-Z a-z 0-9 _ . -)`);
  return text;
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

/** The plan with every value parsed to its canonical form; throws a one-line error naming the bad value. */
export function checkPlan(plan: OsDnsPlan): OsDnsPlan {
  if (!plan || typeof plan !== 'object') throw new Error('DNS plan missing');
  const ifname = parseIfname(plan.ifname);
  if (!Array.isArray(plan.servers) || plan.servers.length === 0) throw new Error('DNS plan has no servers: give the mesh resolver address(es)');
  if (plan.servers.length > MAX_PLAN_SERVERS) throw new Error(`DNS plan has ${plan.servers.length} servers; at most ${MAX_PLAN_SERVERS} (glibc reads 3)`);
  const servers = unique(plan.servers.map((s) => parseIp(s).text));
  const search = Array.isArray(plan.searchDomains) ? plan.searchDomains : [];
  const routing = Array.isArray(plan.routingDomains) ? plan.routingDomains : [];
  if (search.length > MAX_PLAN_SEARCH_DOMAINS) throw new Error(`DNS plan has ${search.length} search domains; at most ${MAX_PLAN_SEARCH_DOMAINS}`);
  if (routing.length > MAX_PLAN_ROUTING_DOMAINS) throw new Error(`DNS plan has ${routing.length} routing domains; at most ${MAX_PLAN_ROUTING_DOMAINS}`);
  return { ifname, servers, searchDomains: unique(search.map(parseDomain)), routingDomains: unique(routing.map(parseDomain)) };
}
