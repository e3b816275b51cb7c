// The lab's optional transit hop (`lab up --transit`): an "ISP" router
// namespace between a site's NAT router and the internet bridge, so a packet
// between two NATed nodes crosses node → site router → ISP router → internet
// → peer's ISP router → peer's router, and a TTL counts those hops as on the
// internet. Without it every router's WAN sits on the same bridge and a packet
// that leaves one router with TTL 1 still reaches the next router's own stack.
//
// The site router keeps its public address (the one STUN sees) as a /32 on its
// WAN link, with a default route to the ISP router's link address; the ISP
// router routes that /32 down the link (cust0) and answers ARP for it on the bridge (inet0)
// (proxy ARP), so everything on the bridge reaches it as before.
import type { LabNode } from './topology.js';
import { transitAddrs } from './topology.js';

/** What the transit hop needs from the lab: namespaces it records, and the bridge. */
export interface TransitLab {
  netns(name: string): Promise<string>;
  onInternet(ns: string, ifname: string, ip: string): Promise<void>;
}

type Run = (cmd: string, args: string[], input?: string) => Promise<string>;

/** Builds node `n`'s ISP namespace and the link from it to the site router's `wan` (the router's namespace exists). */
export async function addTransitHop(lab: TransitLab, n: LabNode, run: Run): Promise<void> {
  const isp = n.transitNs;
  const router = n.routerNs;
  if (!isp || !router) return;
  const { upIp, downIp } = transitAddrs(n.index);
  await lab.netns(isp);
  await lab.onInternet(isp, 'inet0', upIp);
  await run('ip', ['link', 'add', 'cust0', 'netns', isp, 'type', 'veth', 'peer', 'name', 'wan', 'netns', router]);
  await run('ip', ['-n', isp, 'addr', 'add', `${downIp}/30`, 'dev', 'cust0']);
  await run('ip', ['-n', isp, 'link', 'set', 'cust0', 'up']);
  await run('ip', ['-n', isp, 'route', 'add', `${n.wanIp}/32`, 'dev', 'cust0']);
  // forwarding, and ARP answers on the bridge for the site router's address that lives behind `down`
  await run('ip', ['netns', 'exec', isp, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv4/conf/inet0/proxy_arp']);
  await run('ip', ['-n', router, 'addr', 'add', `${n.wanIp}/32`, 'dev', 'wan']);
  await run('ip', ['-n', router, 'link', 'set', 'wan', 'up']);
  await run('ip', ['-n', router, 'route', 'add', `${downIp}/32`, 'dev', 'wan']);
  await run('ip', ['-n', router, 'route', 'add', 'default', 'via', downIp, 'dev', 'wan']);
}
