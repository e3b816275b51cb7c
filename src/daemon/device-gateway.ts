// This node as the gateway of devices on stock WireGuard (a phone's WireGuard
// app): which devices of the network map it holds as plain WireGuard peers,
// and whether the kernel forwards their traffic. A device's packets reach the
// mesh through the gateway's kernel (device → TUN → kernel → TUN → mesh peer)
// and keep their own mesh source address (no SNAT), so the gateway needs IP
// forwarding on and nothing else.
import { keyFromText } from '../crypto/keys.js';
import type { PlainPeerConfig } from '../engine/device/plain-peers.js';
import type { DeviceView, NetworkMap } from '../netmap/types.js';
import { hostPrefix, parseIp, parsePrefix, type IpPrefix } from '../util/netaddr.js';
import { forwardingFix, readForwarding } from './subnet-routes.js';

/** The devices this node is the gateway of: those naming it whose public key the map carries (only the gateway's map does). */
export function gatewayDevices(map: NetworkMap): DeviceView[] {
  return (map.devices ?? []).filter((d) => d.gateway === map.self.name && d.publicKey !== undefined);
}

/** Each device as a plain WireGuard peer: its key, its own addresses as /32 and /128. One that does not parse is skipped and logged. */
export function plainPeersOf(devices: DeviceView[], log: (msg: string) => void): PlainPeerConfig[] {
  const out: PlainPeerConfig[] = [];
  for (const d of devices) {
    const publicKey = keyFromText(d.publicKey);
    if (!publicKey) {
      log(`device ${JSON.stringify(d.name)}: ignored, its public key is not a WireGuard key`);
      continue;
    }
    try {
      out.push({ publicKey, allowedIps: d.addresses.map((a) => hostPrefix(parseIp(a))) });
    } catch (err) {
      log(`device ${JSON.stringify(d.name)}: ignored, ${(err as Error).message}`);
    }
  }
  return out;
}

/**
 * What the gateway forwards for its devices (the destination check's device rule, engine/device/destination-filter.ts):
 * packets from their addresses may go to the mesh prefixes and to the subnet routes other nodes are primary for, which
 * is what the device's config routes to the gateway; nothing else the gateway can reach (its LAN, the internet).
 */
export function deviceForwarding(map: NetworkMap): { sources: IpPrefix[]; destinations: IpPrefix[] } {
  const sources: IpPrefix[] = [];
  const destinations: IpPrefix[] = [];
  const add = (out: IpPrefix[], parse: () => IpPrefix): void => {
    try {
      out.push(parse());
    } catch {
      /* the map parser admits only canonical text; anything else is never accepted */
    }
  };
  const mine = gatewayDevices(map);
  for (const d of mine) for (const a of d.addresses) add(sources, () => hostPrefix(parseIp(a)));
  if (mine.length === 0) return { sources, destinations };
  for (const p of [map.ipv4Prefix, map.ipv6Prefix]) add(destinations, () => parsePrefix(p));
  for (const peer of map.peers) for (const r of peer.primaryRoutes ?? []) add(destinations, () => parsePrefix(r));
  return { sources, destinations };
}

/**
 * A health line for each address family whose forwarding is off while this node gateways devices (read as the subnet
 * router reads it, subnet-routes.ts, at each status: the setting is the host's and may change at any time). A family
 * whose setting cannot be read (no IPv6) says nothing.
 */
export function forwardingHealth(deviceCount: number, read: (family: 4 | 6) => boolean | null = readForwarding): string[] {
  if (deviceCount === 0) return [];
  const n = `${deviceCount} device${deviceCount === 1 ? '' : 's'}`;
  return ([4, 6] as const)
    .filter((fam) => read(fam) === false)
    .map((fam) => `IPv${fam} forwarding is off: the ${n} behind this gateway can reach only this node over IPv${fam}; run \`${forwardingFix(fam)}\``);
}
