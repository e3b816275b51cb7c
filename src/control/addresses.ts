// Mesh addresses. IPv4 comes from the CGNAT range 100.64.0.0/10 (RFC 6598),
// which home networks do not use; IPv6 from a random ULA /48 (RFC 4193) drawn
// once per control server. A counter in the store hands out each IPv4 address
// once: a deleted node's address is not reused, so stale peers cannot reach a
// newcomer by mistake. The node's IPv6 address embeds its IPv4 one.
//
// Every node's DNS resolver listens on two fixed addresses that are never a
// node's: 100.100.100.100 (inside 100.64.0.0/10, so the allocator skips it)
// and <ULA /48>::53. The latter cannot collide: a node's IPv6 address carries
// its IPv4 address (100.64.0.0 or more, 0x64400000+) in its low 32 bits, and
// ::53 is 0.0.0.83 there.
import { randomBytes } from 'node:crypto';
import type { StoreTx } from './store.js';
import { parseIp, parsePrefix } from '../util/netaddr.js';

export const IPV4_PREFIX = '100.64.0.0/10';
const IPV4_BASE = (100 << 24) | (64 << 16);
const IPV4_SIZE = 1 << 22;
/** The nodes' resolver address (the one Tailscale uses; familiar to people coming from it). */
export const RESOLVER_IPV4 = '100.100.100.100';
/** Its offset in 100.64.0.0/10: the allocator never hands it out. */
export const RESOLVER_IPV4_OFFSET = ((100 << 24) | (100 << 16) | (100 << 8) | 100) - IPV4_BASE;
/** The resolver's interface ID inside the network's ULA /48. */
const RESOLVER_IPV6_SUFFIX = '::53';

function v4text(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The network's ULA /48 in canonical text (RFC 5952: no leading zeros in a group), drawn at the first call. */
export async function ipv6Prefix(store: StoreTx): Promise<string> {
  const stored = await store.getMeta('ipv6_prefix');
  if (stored) return parsePrefix(stored).text;
  // drawn and written in one transaction: two servers starting on one shared database agree on one prefix
  return store.transaction(async (tx) => {
    const again = await tx.getMeta('ipv6_prefix');
    if (again) return parsePrefix(again).text;
    const r = randomBytes(5);
    const p = parsePrefix(`fd${r.toString('hex', 0, 1)}:${r.toString('hex', 1, 3)}:${r.toString('hex', 3, 5)}::/48`).text;
    await tx.setMeta('ipv6_prefix', p);
    return p;
  });
}

/** The next unused pair of addresses; call inside the registration transaction. */
export async function allocateAddresses(store: StoreTx): Promise<{ ipv4: string; ipv6: string }> {
  let next = Number((await store.getMeta('next_ipv4_offset')) ?? '1');
  // skip .0 and .255 of every /24: some stacks still treat them as special
  // and the resolver's fixed address
  while ((next & 255) === 0 || (next & 255) === 255 || next === RESOLVER_IPV4_OFFSET) next++;
  if (next >= IPV4_SIZE - 1) throw new Error('the 100.64.0.0/10 range is exhausted');
  await store.setMeta('next_ipv4_offset', String(next + 1));
  const ipv4 = v4text((IPV4_BASE + next) >>> 0);
  const prefix = (await ipv6Prefix(store)).replace('::/48', '');
  const o = ipv4.split('.').map(Number);
  const ipv6 = parseIp(`${prefix}::${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`).text;
  return { ipv4, ipv6 };
}

/** The nodes' resolver addresses, IPv4 then IPv6 (canonical text). */
export function resolverAddresses(prefix: string): [string, string] {
  return [RESOLVER_IPV4, parseIp(prefix.replace('::/48', RESOLVER_IPV6_SUFFIX)).text];
}
