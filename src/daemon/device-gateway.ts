// This node as the gateway of devices on stock WireGuard (a phone's WireGuard
// app): which devices of the network map it holds as plain WireGuard peers,
// and whether the kernel forwards their traffic. A device's packets reach the
// mesh through the gateway's kernel (device → TUN → kernel → TUN → mesh peer)
// and keep their own mesh source address (no SNAT), so the gateway needs IP
// forwarding on and nothing else.
import { readFileSync } from 'node:fs';
import { keyFromText } from '../crypto/keys.js';
import type { PlainPeerConfig } from '../engine/device/plain-peers.js';
import type { DeviceView, NetworkMap } from '../netmap/types.js';
import { hostPrefix, parseIp } from '../util/netaddr.js';

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

/** Where the kernel says whether it forwards; a test points these at files of its own. */
export interface ForwardingFiles {
  ipv4: string;
  ipv6: string;
}
export const PROC_FORWARDING: ForwardingFiles = { ipv4: '/proc/sys/net/ipv4/ip_forward', ipv6: '/proc/sys/net/ipv6/conf/all/forwarding' };

/**
 * A health line for each address family whose forwarding is off while this node gateways devices (null when all is well).
 * Read at each status: the setting is the host's and may change at any time. An unreadable file (no IPv6) says nothing.
 */
export function forwardingHealth(deviceCount: number, files: ForwardingFiles = PROC_FORWARDING): string[] {
  if (deviceCount === 0) return [];
  const off = (path: string): boolean => {
    try {
      return readFileSync(path, 'utf8').trim() === '0';
    } catch {
      return false;
    }
  };
  const out: string[] = [];
  const n = `${deviceCount} device${deviceCount === 1 ? '' : 's'}`;
  if (off(files.ipv4))
    out.push(`IPv4 forwarding is off: the ${n} behind this gateway reach only this node; turn it on with \`sysctl -w net.ipv4.ip_forward=1\``);
  if (off(files.ipv6))
    out.push(
      `IPv6 forwarding is off: the ${n} behind this gateway reach only this node over IPv6; turn it on with \`sysctl -w net.ipv6.conf.all.forwarding=1\``,
    );
  return out;
}
