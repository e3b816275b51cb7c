// Devices without meshctl (a phone on the stock WireGuard app) that reach the
// mesh through a gateway node. The key pair is made by the CLI: control gets
// and keeps only the public key, the private key is printed once in the
// wg-quick config. A device takes mesh addresses from the same allocator as
// nodes and a name from the same namespace (no node and no device share one).
// Every node's map lists the devices; only the gateway's map carries their
// keys; the gateway's allowedIps carry their addresses, so every other node
// routes them through it, like a subnet route.
import { allocateAddresses, IPV4_PREFIX } from './addresses.js';
import { dnsSuffix } from './dns.js';
import { ControlError } from './protocol.js';
import { activeRoutes } from './routes.js';
import type { Registry } from './registry.js';
import type { DeviceRecord } from './store.js';
import { keyFromText, keyToText } from '../crypto/keys.js';
import { MAX_DNS_LABEL_CHARS } from '../netmap/dns-names.js';
import { MAX_NETWORK_DEVICES, MESH_MTU } from '../netmap/types.js';
import { resolverAddresses } from './addresses.js';
import { parseIp, parseIpEndpoint, type IpAddress } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';
import { isoTime } from '../util/time.js';

/** The keepalive the config asks for: keeps the device's NAT mapping open so the gateway can reach it (wg-quick's usual 25 s). */
export const DEVICE_PERSISTENT_KEEPALIVE_S = 25;
/** A host name in --endpoint: a DNS name's text form. */
const MAX_ENDPOINT_HOST_CHARS = 253;

const quoted = (s: string): string => JSON.stringify(terminalSafe(s, 80));
const bad = (message: string): never => {
  throw new ControlError('BAD_REQUEST', message);
};

/** A device name: one lowercase DNS label, as node names are. */
export function checkDeviceName(text: string): string {
  if (!new RegExp(`^[a-z0-9]([a-z0-9-]{0,${MAX_DNS_LABEL_CHARS - 2}}[a-z0-9])?$`).test(text)) {
    bad(`device name ${quoted(text)}: use 1-${MAX_DNS_LABEL_CHARS} lowercase letters, digits and inner dashes, e.g. phone`);
  }
  return text;
}

/** Not a public address: private, shared (CGNAT), loopback, link-local, ULA, documentation-free ranges that NAT hides. */
function isPublic(a: IpAddress): boolean {
  if (a.family === 4) {
    const [x, y] = a.text.split('.').map(Number) as [number, number];
    return !(
      x === 10 ||
      x === 127 ||
      x === 0 ||
      x >= 224 ||
      (x === 172 && y >= 16 && y < 32) ||
      (x === 192 && y === 168) ||
      (x === 169 && y === 254) ||
      (x === 100 && y >= 64 && y < 128)
    );
  }
  const first = parseInt(a.text.split(':')[0] || '0', 16);
  return (first & 0xe000) === 0x2000; // 2000::/3, global unicast
}

/** `--endpoint HOST:PORT`: an IP endpoint, or a DNS name and a port (a name that follows the gateway is what stays valid). */
export function checkEndpoint(text: string): string {
  try {
    return parseIpEndpoint(text).text;
  } catch {
    const m = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
    const port = m ? Number(m[2]) : 0;
    const host = m?.[1]?.toLowerCase() ?? '';
    const labels = host.split('.');
    if (!m || port < 1 || port > 65535 || host.length > MAX_ENDPOINT_HOST_CHARS || labels.some((l) => !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l))) {
      return bad(`endpoint ${quoted(text)} is not HOST:PORT (a name or IPv4 address and a port 1-65535, or [IPv6]:PORT)`);
    }
    return `${host}:${port}`;
  }
}

/** What the CLI needs to write the device's wg-quick config (all but the private key, which only the CLI ever had). */
export interface DeviceConfigInfo {
  device: { id: number; name: string; addresses: string[]; gateway: string };
  gatewayKey: string;
  endpoint: string;
  /** where `endpoint` came from, for the operator */
  endpointSource: string;
  /** the mesh prefixes and the network's primary subnet routes */
  allowedIps: string[];
  /** the nodes' resolvers and the search domain */
  dns: { resolvers: string[]; suffix: string };
  mtu: number;
}

/** The gateway's reported endpoint that can stay valid: the first with a public address. */
function pickEndpoint(endpoints: string[], gateway: string): { endpoint: string; source: string } {
  for (const e of endpoints) {
    const ep = parseIpEndpoint(e);
    if (isPublic(ep.address)) {
      return {
        endpoint: ep.text,
        source: `the public endpoint gateway ${gateway} reports (if it is a NAT's STUN-mapped port it will not stay valid: pass --endpoint)`,
      };
    }
  }
  return bad(
    `gateway ${gateway} reports no endpoint with a public address (${endpoints.length ? endpoints.join(', ') : 'none'}): pass --endpoint HOST:PORT with a name or address and a forwarded port that reaches it`,
  );
}

/** Registers a device behind `gatewayRef` with the public key the CLI made; returns what its config needs. */
export async function addDevice(r: Registry, nameText: string, gatewayRef: string, publicKeyText: string, endpointText?: string): Promise<DeviceConfigInfo> {
  const name = checkDeviceName(nameText);
  const key = keyFromText(publicKeyText);
  if (!key) return bad('the device public key must be a base64 32-byte key');
  const publicKey = keyToText(key);
  const endpointGiven = endpointText === undefined ? undefined : checkEndpoint(endpointText);
  return r.store.transaction(async (tx) => {
    const ref = r.find(gatewayRef);
    // the gateway as the transaction sees it (the copy in memory may be a moment old)
    const gw = ref && (await tx.getNode(ref.id));
    if (!gw) throw new ControlError('NODE_UNKNOWN', `no gateway node ${quoted(gatewayRef)}: see \`meshctl control nodes list\``);
    if (r.isExpired(gw)) bad(`gateway ${gw.hostname}'s key has expired: re-authenticate it first`);
    const nodes = (await tx.listNodes()).filter((n) => !r.isExpired(n));
    if (nodes.some((n) => n.hostname === name)) bad(`${name} is a node's name: pick another device name`);
    const devices = await tx.listDevices();
    if (devices.some((d) => d.name === name))
      bad(`a device named ${name} exists: remove it first (\`meshctl control device remove ${name}\`) or pick another name`);
    if (devices.some((d) => d.publicKey === publicKey)) bad('a device with this public key exists');
    if (devices.length >= MAX_NETWORK_DEVICES) bad(`already ${MAX_NETWORK_DEVICES} devices (MAX_NETWORK_DEVICES): remove one first`);
    const { endpoint, source } = endpointGiven ? { endpoint: endpointGiven, source: 'given with --endpoint' } : pickEndpoint(gw.endpoints, gw.hostname);
    const { ipv4, ipv6 } = await allocateAddresses(tx);
    const d = await tx.insertDevice({ name, publicKey, ipv4, ipv6, gatewayId: gw.id, createdAtMs: Date.now() });
    // every active subnet route of the network (each has a primary router the gateway forwards to); read without re-electing
    const routes = new Set([...activeRoutes(await tx.listRouteApprovals(), nodes).values()].flatMap((a) => a.routes));
    return {
      device: { id: d.id, name, addresses: [ipv4, ipv6], gateway: gw.hostname },
      gatewayKey: gw.nodeKey,
      endpoint,
      endpointSource: source,
      allowedIps: [IPV4_PREFIX, r.ipv6Prefix, ...routes],
      dns: { resolvers: resolverAddresses(r.ipv6Prefix), suffix: await dnsSuffix(tx) },
      mtu: MESH_MTU,
    };
  });
}

export interface AdminDevice {
  id: number;
  name: string;
  addresses: string[];
  gateway: string;
  publicKey: string;
  created: string;
}

export function listDevices(r: Registry): AdminDevice[] {
  const names = new Map(r.nodes().map((n) => [n.id, n.hostname]));
  return r.devices().map((d: DeviceRecord) => ({
    id: d.id,
    name: d.name,
    addresses: [d.ipv4, d.ipv6],
    gateway: names.get(d.gatewayId) ?? '?',
    publicKey: d.publicKey,
    created: isoTime(d.createdAtMs),
  }));
}

/** Removes a device by name, id or address; it leaves the gateway's map with the next push. */
export async function removeDevice(r: Registry, ref: string): Promise<{ id: number; name: string }> {
  const d = r.devices().find((x) => x.name === ref || String(x.id) === ref || x.ipv4 === ref || x.ipv6 === ref);
  if (!d) throw new ControlError('NOT_FOUND', `no device ${quoted(ref)}: see \`meshctl control device list\``);
  await r.store.deleteDevice(d.id);
  return { id: d.id, name: d.name };
}

/** The device's wg-quick configuration; the private key appears here and nowhere else. */
export function wgQuickConfig(privateKey: string, info: DeviceConfigInfo): string {
  const addr = info.device.addresses.map((a) => `${a}/${parseIp(a).family === 4 ? 32 : 128}`);
  return [
    '[Interface]',
    `PrivateKey = ${privateKey}`,
    `Address = ${addr.join(', ')}`,
    `DNS = ${[...info.dns.resolvers, info.dns.suffix].join(', ')}`,
    `MTU = ${info.mtu}`,
    '',
    '[Peer]',
    `PublicKey = ${info.gatewayKey}`,
    `AllowedIPs = ${info.allowedIps.join(', ')}`,
    `Endpoint = ${info.endpoint}`,
    `PersistentKeepalive = ${DEVICE_PERSISTENT_KEEPALIVE_S}`,
    '',
  ].join('\n');
}
