// The lab's IPv6 layer (`meshctl lab up --ipv6`), as data: the internet bridge
// gets 2001:db8:113::/64 beside its IPv4 range, the control server and the
// relays an address there, public nodes one too, and each NAT site a routed
// /64 of its own behind a stateful firewall on its router (new inbound
// connections dropped, replies let in) while IPv4 stays behind the site's NAT
// kind, as on a cellular network that is IPv6-native. Every address is from
// the documentation range 2001:db8::/32 and lives only inside the lab's
// namespaces. The commands are argv lists built from these constants and the
// node plan, never from outside text.
import type { LabNode } from './topology.js';

/** The internet bridge's IPv6 /64. */
export const INET6_PREFIX = '2001:db8:113::';
export const CONTROL_IP6 = `${INET6_PREFIX}2`;
export const RELAY_IP6: Readonly<Record<string, string>> = { east: `${INET6_PREFIX}3`, west: `${INET6_PREFIX}4` };

/** A node's (or its router's) address on the internet bridge: ::11 for node 1, beside 7.0.113.11. */
export function wanIp6(node: Pick<LabNode, 'index'>): string {
  return `${INET6_PREFIX}${10 + node.index}`;
}

/** The routed /64 of a NAT site: 2001:db8:101::/64 for node 1, its router ::1 and the node ::2. */
export function sitePrefix6(node: Pick<LabNode, 'index'>): string {
  return `2001:db8:${100 + node.index}::`;
}

/** The node's own IPv6 address: on the bridge for a public node, in its site's /64 behind a router. */
export function nodeIp6(node: Pick<LabNode, 'index' | 'routerNs'>): string {
  return node.routerNs ? `${sitePrefix6(node)}2` : wanIp6(node);
}

/**
 * The IPv6 firewall of a NAT site's router: forwarded packets from the WAN to
 * the site pass only as replies (conntrack established or related, which
 * includes ICMPv6 errors such as packet-too-big); anything new from outside is
 * dropped, as stateful firewalls of IPv6 home and cellular networks do. The
 * router itself is covered by the NAT ruleset's input chain (table inet).
 */
export function firewall6Rules(): string {
  return (
    'table ip6 meshlab_fw6 {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n' +
    '    iifname "wan" oifname "lan" ct state established,related accept\n    iifname "wan" oifname "lan" drop\n  }\n}\n'
  );
}

/** Where the lab's IPv6 goes: names and addresses of what sits on the bridge, and the sites. */
export interface Ipv6Plan {
  /** the namespace of the internet bridge (br0 in it) */
  inetNs: string;
  controlNs: string;
  /** relay region → its namespace */
  relayNs: Readonly<Record<string, string>>;
  nodes: readonly LabNode[];
}

/** One step: an `ip` argv, or an nftables ruleset for a namespace. */
export type Ipv6Step = { ip: string[] } | { ns: string; nft: string } | { ns: string; forwarding6: true };

/**
 * The steps that give a built IPv4 lab its IPv6: addresses without duplicate
 * address detection (`nodad`: the lab assigns each address once, and DAD would
 * hold it tentative for a second), on-link routes on the bridge to each site's
 * /64 through its router, forwarding and the firewall on each router, and the
 * node's default route to its router.
 */
export function ipv6Steps(p: Ipv6Plan): Ipv6Step[] {
  const steps: Ipv6Step[] = [];
  // multicast snooping would hold neighbour solicitations back until it has seen MLD reports
  steps.push({ ip: ['-n', p.inetNs, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0'] });
  const onBridge: { ns: string; ifname: string; ip: string }[] = [{ ns: p.controlNs, ifname: 'eth0', ip: CONTROL_IP6 }];
  for (const [region, ns] of Object.entries(p.relayNs)) {
    const ip = RELAY_IP6[region];
    if (ip) onBridge.push({ ns, ifname: 'eth0', ip });
  }
  for (const n of p.nodes) onBridge.push(n.routerNs ? { ns: n.routerNs, ifname: 'wan', ip: wanIp6(n) } : { ns: n.ns, ifname: 'eth0', ip: wanIp6(n) });
  for (const b of onBridge) steps.push({ ip: ['-n', b.ns, 'addr', 'add', `${b.ip}/64`, 'dev', b.ifname, 'nodad'] });
  const sites = p.nodes.filter((n) => n.routerNs);
  for (const b of onBridge)
    for (const s of sites) if (s.routerNs !== b.ns) steps.push({ ip: ['-n', b.ns, '-6', 'route', 'add', `${sitePrefix6(s)}/64`, 'via', wanIp6(s)] });
  for (const s of sites) {
    const r = s.routerNs!;
    steps.push({ ns: r, forwarding6: true });
    steps.push({ ip: ['-n', r, 'addr', 'add', `${sitePrefix6(s)}1/64`, 'dev', 'lan', 'nodad'] });
    steps.push({ ip: ['-n', s.ns, 'addr', 'add', `${nodeIp6(s)}/64`, 'dev', 'eth0', 'nodad'] });
    steps.push({ ip: ['-n', s.ns, '-6', 'route', 'add', 'default', 'via', `${sitePrefix6(s)}1`] });
    steps.push({ ns: r, nft: firewall6Rules() });
  }
  return steps;
}

/** The relay map entry's `ipv6=` part for a region the lab runs, or '' without IPv6. */
export function relayIpv6Query(region: string, ipv6: boolean): string {
  const ip = RELAY_IP6[region];
  return ipv6 && ip ? `&ipv6=${ip}` : '';
}

/** True when `ss -tln` output shows a listener for ip:port, on that address or on a wildcard (dual-stack `::`). */
export function ssListening(ssOut: string, ip: string, port: number): boolean {
  const tokens = new Set(ssOut.split(/\s+/));
  return [`${ip}:${port}`, `*:${port}`, `[::]:${port}`, `0.0.0.0:${port}`].some((t) => tokens.has(t));
}
