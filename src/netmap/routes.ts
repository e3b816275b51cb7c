// Which prefixes may be a subnet route: the one rule control applies when a
// node advertises routes and an admin approves them, and nodes apply to the
// routes a map carries. A route is canonical (no host bits), is not the default
// route (that is the exit-node flag), does not touch the mesh's own prefixes,
// and does not touch address blocks that are never routed to a LAN
// (loopback, link-local, multicast, "this network").
import { ipBytes, parseIp, parsePrefix, prefixesOverlap, type IpPrefix } from '../util/netaddr.js';

/** Address blocks a subnet route may not overlap, and why. */
const SPECIAL_BLOCKS: readonly { prefix: IpPrefix; what: string }[] = [
  ['0.0.0.0/8', '"this network" (0.0.0.0/8)'],
  ['127.0.0.0/8', 'loopback (127.0.0.0/8)'],
  ['169.254.0.0/16', 'link-local (169.254.0.0/16)'],
  ['224.0.0.0/4', 'multicast (224.0.0.0/4)'],
  ['::/128', 'the unspecified address (::)'],
  ['::1/128', 'loopback (::1)'],
  ['fe80::/10', 'link-local (fe80::/10)'],
  ['ff00::/8', 'multicast (ff00::/8)'],
].map(([p, what]) => ({ prefix: parsePrefix(p), what: what! }));

/** The prefix with its host bits cleared (`10.1.2.3/24` → `10.1.2.0/24`). */
export function maskedPrefix(p: IpPrefix): IpPrefix {
  const b = ipBytes(p.address);
  for (let bit = p.bits; bit < b.length * 8; bit++) b[bit >> 3]! &= ~(0x80 >> (bit & 7));
  const text = p.address.family === 4 ? [...b].join('.') : bytesToV6(b);
  const address = parseIp(text);
  return { address, bits: p.bits, text: `${address.text}/${p.bits}` };
}

function bytesToV6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/** `0.0.0.0/0` or `::/0`: an exit node's routes, never a subnet route. */
export function isDefaultRoute(p: IpPrefix): boolean {
  return p.bits === 0;
}

/**
 * Why `p` cannot be a subnet route of a network whose mesh prefixes are
 * `mesh`, or null when it can. The reasons are one line each, with the fix.
 */
export function subnetRouteProblem(p: IpPrefix, mesh: readonly IpPrefix[]): string | null {
  const canon = maskedPrefix(p);
  if (canon.text !== p.text) return `${p.text} has host bits set: the prefix is ${canon.text}`;
  if (isDefaultRoute(p)) return `${p.text} is the default route: advertise an exit node instead (--advertise-exit-node)`;
  for (const m of mesh) if (prefixesOverlap(p, m)) return `${p.text} overlaps the mesh prefix ${m.text}`;
  for (const s of SPECIAL_BLOCKS) if (prefixesOverlap(p, s.prefix)) return `${p.text} overlaps ${s.what}, which is never a LAN route`;
  return null;
}
