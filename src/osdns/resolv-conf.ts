// resolv.conf as glibc reads it: which resolvers and search domains the host
// had, whether it points at systemd-resolved's stub, and the file meshctl
// writes in "direct" mode. Pure functions over the file's text.
import { type IpEndpoint, parseIp } from '../util/netaddr.js';

/** systemd-resolved's stub listener: a resolv.conf naming it means resolved owns name resolution. */
export const RESOLVED_STUB = '127.0.0.53';
/** glibc uses the first 3 nameserver lines (MAXNS) and ignores the rest. */
export const MAX_UPSTREAMS = 3;

export interface ResolvConf {
  /** nameserver addresses in file order (canonical text; zoned or malformed ones are skipped) */
  nameservers: string[];
  /** the search list glibc uses: the last `search` or `domain` line wins */
  search: string[];
  /** `options` lines, verbatim */
  options: string[];
}

/** Keyword and arguments of each line that is not blank or a comment (`#` or `;` first). */
function directives(text: string): { key: string; args: string[]; line: string }[] {
  const out: { key: string; args: string[]; line: string }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    const [key, ...args] = trimmed.split(/[ \t]+/);
    out.push({ key: key!, args, line });
  }
  return out;
}

export function parseResolvConf(text: string): ResolvConf {
  const nameservers: string[] = [];
  let search: string[] = [];
  const options: string[] = [];
  for (const d of directives(text)) {
    if (d.key === 'nameserver' && d.args[0] !== undefined) {
      try {
        nameservers.push(parseIp(d.args[0]).text);
      } catch {
        /* a zoned IPv6 (fe80::1%eth0) or junk: glibc may use it, we cannot forward to it */
      }
    } else if (d.key === 'search') search = d.args.filter((a) => !a.startsWith('#') && !a.startsWith(';'));
    else if (d.key === 'domain' && d.args[0] !== undefined) search = [d.args[0]];
    else if (d.key === 'options') options.push(d.line);
  }
  return { nameservers, search, options };
}

export type Mode = 'direct' | 'resolved';

/** The mode the file itself calls for, and why (for `dns status`). D-Bus is not asked: in a namespace the host's resolved answers but does not serve us. */
export function detectMode(text: string, path: string): { mode: Mode; why: string } {
  const conf = parseResolvConf(text);
  if (conf.nameservers.includes(RESOLVED_STUB))
    return { mode: 'resolved', why: `${path} names ${RESOLVED_STUB}, systemd-resolved's stub: configuring the mesh link through resolvectl` };
  const listed = conf.nameservers.length > 0 ? `nameservers ${conf.nameservers.join(', ')}` : 'no usable nameserver';
  return { mode: 'direct', why: `${path} has no ${RESOLVED_STUB} stub (${listed}): managing the file directly` };
}

/** The resolvers to forward non-mesh names to: the file's nameservers minus our own, port 53. */
export function upstreamsOf(text: string, own: readonly string[]): IpEndpoint[] {
  const mine = new Set(own);
  return parseResolvConf(text)
    .nameservers.filter((ns) => !mine.has(ns))
    .slice(0, MAX_UPSTREAMS)
    .map((ns) => {
      const address = parseIp(ns);
      return { address, port: 53, text: address.family === 6 ? `[${ns}]:53` : `${ns}:53` };
    });
}

/** The first line of every file direct mode writes. */
export const MANAGED_HEADER = '# Managed by meshctl (MagicDNS, "direct" mode) while the mesh is up: do not edit.';

/**
 * The file direct mode writes: a header saying who manages it and how to undo
 * it, our nameservers, our search domains before the original ones, and the
 * original `options` lines (ndots, timeout, edns0… still apply).
 */
export function renderResolvConf(original: string, servers: string[], searchDomains: string[], backupHint: string): string {
  const conf = parseResolvConf(original);
  const search = [...new Set([...searchDomains, ...conf.search])];
  const lines = [
    MANAGED_HEADER,
    `# The original file is kept at ${backupHint}; meshctl puts it back byte for byte`,
    '# on `meshctl down`, on daemon exit, and at the next daemon start after a crash.',
    '# To restore by hand: stop the meshctl daemon, then copy that file over this one.',
    ...servers.map((s) => `nameserver ${s}`),
  ];
  if (search.length > 0) lines.push(`search ${search.join(' ')}`);
  lines.push(...conf.options);
  return `${lines.join('\n')}\n`;
}
