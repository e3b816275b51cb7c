// The DNS names and limits of the network's name service, checked the same way
// by the control server (what an operator types) and by nodes (what a map
// carries). A name here is a hostname in the letter-digit-hyphen (LDH) syntax,
// lowercase, dot-separated, with no dot at either end: nothing in it can be
// read by a resolver, a resolv.conf or a terminal as anything but a name.

/** The suffix every node's name gets when the operator names none; `.internal` is reserved for private use (ICANN, 2024). */
export const DEFAULT_DNS_SUFFIX = 'mesh.internal';
/** A full name's text form (RFC 1035: 255 octets on the wire, 253 characters as text). */
export const MAX_DNS_NAME_CHARS = 253;
/** One label (RFC 1035). */
export const MAX_DNS_LABEL_CHARS = 63;
/**
 * The suffix: 253 - 63 - 1 = 189, so that NAME.suffix stays a valid DNS name
 * for every node name control hands out (one label of up to 63 characters).
 */
export const MAX_DNS_SUFFIX_CHARS = MAX_DNS_NAME_CHARS - MAX_DNS_LABEL_CHARS - 1;
/** Split-DNS routes: each is a domain the OS resolver is told about (a routing domain) and a match per query. */
export const MAX_DNS_ROUTES = 64;
/** Resolvers per route: tried in turn; resolv.conf itself uses at most 3, a few more cover both families. */
export const MAX_RESOLVERS_PER_ROUTE = 4;
/** Extra records: every node holds them all in its zone; far more than a home or office names by hand. */
export const MAX_DNS_RECORDS = 1024;
/** The node resolver's own addresses in a map: one IPv4, one IPv6. */
export const MAX_DNS_LOCAL_RESOLVERS = 2;

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Why `text` is not a DNS name with at least `minLabels` labels (lowercase LDH,
 * no leading or trailing dot, at most `maxChars` characters), or null when it
 * is one. The last label may not be all digits, so no name reads as an IPv4 address.
 */
export function dnsNameProblem(text: unknown, minLabels: number, maxChars = MAX_DNS_NAME_CHARS): string | null {
  if (typeof text !== 'string') return `expected a string, got ${text === null ? 'null' : typeof text}`;
  if (text.length === 0) return 'empty';
  if (text.length > maxChars) return `longer than ${maxChars} characters`;
  if (text.startsWith('.') || text.endsWith('.')) return 'a dot at the start or the end (write the name without it)';
  const labels = text.split('.');
  for (const l of labels) {
    if (l.length === 0) return 'an empty label (two dots in a row)';
    if (l.length > MAX_DNS_LABEL_CHARS) return `a label longer than ${MAX_DNS_LABEL_CHARS} characters`;
    if (!LABEL.test(l)) return 'labels are lowercase letters, digits and inner hyphens (a-z, 0-9, -)';
  }
  if (labels.length < minLabels) return `at least ${minLabels} labels are needed (e.g. mesh.internal)`;
  if (/^\d+$/.test(labels[labels.length - 1]!)) return 'the last label is all digits (it would read as an address)';
  return null;
}

/** ASCII-only lowercasing: String#toLowerCase maps some non-ASCII letters (the Kelvin sign) onto ASCII ones. */
export function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Why `text` is not a DNS suffix (two or more labels, at most MAX_DNS_SUFFIX_CHARS; any ASCII case), or null. */
export function dnsSuffixProblem(text: unknown): string | null {
  return typeof text === 'string' ? dnsNameProblem(asciiLower(text), 2, MAX_DNS_SUFFIX_CHARS) : 'not a string';
}

/** Whether `name` is `domain` or a name under it (both canonical). */
export function isAtOrUnder(name: string, domain: string): boolean {
  return name === domain || name.endsWith(`.${domain}`);
}
