// miniupnpd for the lab's "upnp" NAT kind: UPnP IGD, NAT-PMP and PCP on the
// router's LAN side, mapping to its WAN address.
import type { LabNode } from './topology.js';

export function miniupnpdConfig(n: LabNode): string {
  return [
    'ext_ifname=wan',
    'listening_ip=lan',
    'enable_natpmp=yes',
    'enable_upnp=yes',
    'secure_mode=yes',
    'system_uptime=yes',
    `uuid=3d3cec3a-8cf0-11e0-98ee-00123456789${n.index % 10}`,
    `allow 1024-65535 192.168.${n.index}.0/24 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
    '',
  ].join('\n');
}
