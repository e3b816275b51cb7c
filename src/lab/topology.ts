// The lab's network, as data: an "internet" bridge with the control server
// and two relay regions on it, and nodes that sit on it directly or behind
// a NAT router of a chosen kind. Every address lives only inside namespaces
// the lab creates, with no route out. The "internet" uses 7.0.113.0/24, a
// public-looking range, because miniupnpd refuses to map ports on a WAN
// address from the reserved ranges (including the RFC 5737 documentation ones).

export type NatKind = 'public' | 'easy' | 'hard' | 'blocked' | 'upnp' | 'easy-bare' | 'hard-bare';

export const NAT_KINDS: readonly NatKind[] = ['public', 'easy', 'hard', 'blocked', 'upnp', 'easy-bare', 'hard-bare'];

/**
 * What a NAT router does with unsolicited packets arriving on its WAN side: `drop` them (a home router), or `none`
 * (a Linux box that only masquerades: a Docker or LXC host, a DIY router), which delivers them to the router itself.
 */
export type RouterFirewall = 'drop' | 'none';

export const NAT_DESCRIPTION: Record<NatKind, string> = {
  public: 'no NAT: a public address on the internet bridge',
  easy: 'NAT with endpoint-independent mapping (nftables masquerade, port-preserving)',
  hard: 'NAT with endpoint-dependent mapping (nftables masquerade random)',
  blocked: 'NAT that lets no UDP out: only TCP, so only the relay works',
  upnp: 'easy NAT running miniupnpd (UPnP IGD, NAT-PMP, PCP)',
  'easy-bare': 'easy NAT with no WAN input firewall (a Linux box that only masquerades)',
  'hard-bare': 'hard NAT with no WAN input firewall (a Linux box that only masquerades, random ports)',
};

/** The bare kinds never drop unsolicited WAN input, whatever the lab's --router-firewall says. */
export function routerFirewallOf(kind: NatKind, labDefault: RouterFirewall): RouterFirewall {
  return kind === 'easy-bare' || kind === 'hard-bare' ? 'none' : labDefault;
}

export const INET_PREFIX = '7.0.113';
export const CONTROL_IP = `${INET_PREFIX}.2`;
export const CONTROL_PORT = 8443;
export const RELAYS = [
  { region: 'east', ip: `${INET_PREFIX}.3`, port: 443, stunPort: 3478 },
  { region: 'west', ip: `${INET_PREFIX}.4`, port: 443, stunPort: 3478 },
];

export interface LabNode {
  index: number;
  name: string;
  kind: NatKind;
  ns: string;
  /** the router's namespace, null for public nodes */
  routerNs: string | null;
  /** the node's own address */
  lanIp: string;
  /** its address on the internet bridge (the router's WAN address behind a NAT) */
  wanIp: string;
  /** the ISP router's namespace between the NAT router and the internet bridge (`--transit`), absent without one */
  transitNs?: string | null;
  /** what the NAT router does with unsolicited WAN input (absent: drop) */
  firewall?: RouterFirewall;
}

/** The transit ("ISP") router of node `index`: its address on the internet bridge, and the link down to the site router. */
export function transitAddrs(index: number): { upIp: string; downIp: string } {
  return { upIp: `${INET_PREFIX}.${100 + index}`, downIp: `198.18.${index}.1` };
}

export interface PlanOptions {
  /** what every NAT router does with unsolicited WAN input (the bare kinds always accept it) */
  routerFirewall?: RouterFirewall;
  /** an ISP router between each NAT router and the internet bridge, so TTLs count one more hop each side */
  transit?: boolean;
}

export function planNodes(prefix: string, kinds: NatKind[], o: PlanOptions = {}): LabNode[] {
  return kinds.map((kind, i) => {
    const index = i + 1;
    const wanIp = `${INET_PREFIX}.${10 + index}`;
    return {
      index,
      name: `node${index}-${kind}`,
      kind,
      ns: `${prefix}n${index}`,
      routerNs: kind === 'public' ? null : `${prefix}r${index}`,
      lanIp: kind === 'public' ? wanIp : `192.168.${index}.2`,
      wanIp,
      transitNs: kind !== 'public' && o.transit ? `${prefix}t${index}` : null,
      firewall: routerFirewallOf(kind, o.routerFirewall ?? 'drop'),
    };
  });
}

/**
 * The nftables ruleset of a NAT router (interfaces named wan and lan). With
 * `firewall` drop (the default) it drops unsolicited packets arriving on its
 * WAN side, as home routers do. With none (the bare kinds) Linux delivers them
 * to the router itself and records a conntrack entry for them, and that entry
 * makes masquerade give the matching outbound flow a different port: hole
 * punching must then avoid reaching the peer's router first (docs/nat.md).
 */
export function natRules(kind: NatKind, firewall: RouterFirewall = routerFirewallOf(kind, 'drop')): string {
  const masq = kind === 'hard' || kind === 'hard-bare' ? 'masquerade random' : 'masquerade';
  const wanIn =
    firewall === 'drop' ? `  chain wan_in {\n    type filter hook input priority 0; policy accept;\n    iifname "wan" ct state new drop\n  }\n` : '';
  const blockUdp =
    kind === 'blocked' ? `  chain forward_udp {\n    type filter hook forward priority 0; policy accept;\n    oifname "wan" meta l4proto udp drop\n  }\n` : '';
  // the tables and chains miniupnpd (nftables backend) expects to fill in
  const upnp =
    kind === 'upnp'
      ? `table inet filter {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n    jump miniupnpd\n  }\n  chain miniupnpd {\n  }\n  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n    jump prerouting_miniupnpd\n  }\n  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n    jump postrouting_miniupnpd\n  }\n  chain prerouting_miniupnpd {\n  }\n  chain postrouting_miniupnpd {\n  }\n}\n`
      : '';
  return (
    upnp +
    `table ip meshlab_nat {\n  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n    oifname "wan" ${masq}\n  }\n}\n` +
    `table inet meshlab_filter {\n${wanIn}${blockUdp}}\n`
  );
}
