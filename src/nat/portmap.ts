// Port mapping: ask the NAT in front of us to forward a public port to the
// WireGuard port, so peers behind any kind of NAT can reach us directly.
// NAT-PMP (RFC 6886) maps; PCP (RFC 6887) and UPnP IGD are probed so netcheck
// can say what the gateway offers. Each probe is one small UDP exchange with
// the default gateway; nothing is sent anywhere else.
import dgram from 'node:dgram';
import { readFileSync } from '../util/cjs.js';

const NATPMP_PORT = 5351;
const SSDP_ADDR = '239.255.255.250';
const SSDP_PORT = 1900;
const PROBE_TIMEOUT_MS = 700;
/** Requested mapping lifetime; renewed at half of what the gateway grants. */
export const MAPPING_LIFETIME_S = 7200;

/** The IPv4 default gateway, from the kernel's routing table. */
export function defaultGateway(routeTable = '/proc/net/route'): string | null {
  try {
    for (const line of readFileSync(routeTable, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1] === '00000000' && f[2] && f[2] !== '00000000') {
        const n = parseInt(f[2], 16);
        return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
      }
    }
  } catch {
    /* no /proc: no gateway */
  }
  return null;
}

function exchange(host: string, port: number, req: Buffer, accept: (b: Buffer) => boolean, timeoutMs = PROBE_TIMEOUT_MS): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (b: Buffer | null): void => {
      clearTimeout(t);
      s.close();
      resolve(b);
    };
    const t = setTimeout(() => done(null), timeoutMs);
    s.on('message', (m) => {
      if (accept(m)) done(m);
    });
    s.on('error', () => done(null));
    s.send(req, port, host);
  });
}

export interface Mapping {
  protocol: 'NAT-PMP' | 'PCP' | 'UPnP';
  external: string;
  internalPort: number;
  lifetimeS: number;
}

/** NAT-PMP: the gateway's external address, then a UDP mapping for `internalPort`. */
export async function natpmpMap(gateway: string, internalPort: number, lifetimeS = MAPPING_LIFETIME_S): Promise<Mapping | null> {
  const addr = await exchange(gateway, NATPMP_PORT, Buffer.from([0, 0]), (b) => b.length >= 12 && b[1] === 128);
  if (!addr || addr.readUInt16BE(2) !== 0) return null;
  const ip = [...addr.subarray(8, 12)].join('.');
  const req = Buffer.alloc(12);
  req[1] = 1; // map UDP
  req.writeUInt16BE(internalPort, 4);
  req.writeUInt16BE(internalPort, 6); // ask for the same port outside
  req.writeUInt32BE(lifetimeS, 8);
  const r = await exchange(gateway, NATPMP_PORT, req, (b) => b.length >= 16 && b[1] === 129 && b.readUInt16BE(8) === internalPort);
  if (!r || r.readUInt16BE(2) !== 0) return null;
  return { protocol: 'NAT-PMP', external: `${ip}:${r.readUInt16BE(10)}`, internalPort, lifetimeS: r.readUInt32BE(12) };
}

/** NAT-PMP's deletion: a mapping request with lifetime 0. */
export async function natpmpUnmap(gateway: string, internalPort: number): Promise<void> {
  const req = Buffer.alloc(12);
  req[1] = 1;
  req.writeUInt16BE(internalPort, 4);
  await exchange(gateway, NATPMP_PORT, req, (b) => b[1] === 129);
}

function ipv4Mapped(ip: string): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16BE(0xffff, 10);
  ip.split('.').forEach((o, i) => (b[12 + i] = Number(o)));
  return b;
}

/** PCP MAP (RFC 6887 §11): our UDP port, the same port asked for outside. */
export async function pcpMap(gateway: string, clientIp: string, internalPort: number, lifetimeS = MAPPING_LIFETIME_S): Promise<Mapping | null> {
  const req = Buffer.alloc(60);
  req[0] = 2; // version
  req[1] = 1; // request, opcode MAP
  req.writeUInt32BE(lifetimeS, 4);
  ipv4Mapped(clientIp).copy(req, 8);
  const nonce = Buffer.from(Array.from({ length: 12 }, () => Math.floor(Math.random() * 256)));
  nonce.copy(req, 24);
  req[36] = 17; // UDP
  req.writeUInt16BE(internalPort, 40);
  req.writeUInt16BE(internalPort, 42); // suggested external port
  // suggested external address: all zeros (any)
  const r = await exchange(gateway, NATPMP_PORT, req, (b) => b.length >= 60 && b[0] === 2 && b[1] === 0x81 && b.subarray(24, 36).equals(nonce));
  if (!r || r[3] !== 0) return null;
  const ext = r.subarray(44, 60);
  const ip = [...ext.subarray(12, 16)].join('.');
  return { protocol: 'PCP', external: `${ip}:${r.readUInt16BE(42)}`, internalPort, lifetimeS: r.readUInt32BE(4) };
}

/** PCP answers an ANNOUNCE (RFC 6887 §14.1) with a version-2 response. */
async function pcpAvailable(gateway: string): Promise<boolean> {
  const req = Buffer.alloc(24);
  req[0] = 2; // version
  req[1] = 0; // request, opcode ANNOUNCE
  const r = await exchange(gateway, NATPMP_PORT, req, (b) => b.length >= 24 && b[0] === 2 && (b[1]! & 0x80) !== 0);
  return r !== null;
}

/** The IGD's description URL, from an SSDP search on the LAN; null when no gateway answers. */
async function upnpLocation(): Promise<string | null> {
  const msg = Buffer.from(`M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_ADDR}:${SSDP_PORT}\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n`);
  const r = await exchange(SSDP_ADDR, SSDP_PORT, msg, (b) => /^HTTP\/1\.1 200/.test(b.toString('latin1')) && /InternetGatewayDevice/i.test(b.toString('latin1')), PROBE_TIMEOUT_MS * 2);
  return r ? (/^location:\s*(\S+)/im.exec(r.toString('latin1'))?.[1] ?? null) : null;
}

const WAN_SERVICES = ['urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANIPConnection:1', 'urn:schemas-upnp-org:service:WANPPPConnection:1'];

async function soap(controlUrl: string, service: string, action: string, args: Record<string, string | number>): Promise<string | null> {
  const body = `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:${action} xmlns:u="${service}">${Object.entries(args)
    .map(([k, v]) => `<${k}>${v}</${k}>`)
    .join('')}</u:${action}></s:Body></s:Envelope>`;
  try {
    const res = await fetch(controlUrl, { method: 'POST', body, headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: `"${service}#${action}"` }, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS * 3) });
    return res.ok ? await res.text() : null;
  } catch {
    return null;
  }
}

/** UPnP IGD: find the WAN connection service, ask for its external address, add a UDP port mapping. */
export async function upnpMap(clientIp: string, internalPort: number, lifetimeS = MAPPING_LIFETIME_S): Promise<Mapping | null> {
  const location = await upnpLocation();
  if (!location) return null;
  let desc: string;
  try {
    desc = await (await fetch(location, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS * 3) })).text();
  } catch {
    return null;
  }
  for (const service of WAN_SERVICES) {
    const block = new RegExp(`<serviceType>${service}</serviceType>[\\s\\S]*?<controlURL>([^<]+)</controlURL>`).exec(desc);
    if (!block) continue;
    const controlUrl = new URL(block[1]!, location).toString();
    const ipAnswer = await soap(controlUrl, service, 'GetExternalIPAddress', {});
    const ip = ipAnswer && /<NewExternalIPAddress>([^<]+)</.exec(ipAnswer)?.[1];
    if (!ip) continue;
    const added = await soap(controlUrl, service, 'AddPortMapping', {
      NewRemoteHost: '',
      NewExternalPort: internalPort,
      NewProtocol: 'UDP',
      NewInternalPort: internalPort,
      NewInternalClient: clientIp,
      NewEnabled: 1,
      NewPortMappingDescription: 'meshctl',
      NewLeaseDuration: lifetimeS,
    });
    if (added !== null) return { protocol: 'UPnP', external: `${ip}:${internalPort}`, internalPort, lifetimeS };
  }
  return null;
}

async function upnpAvailable(): Promise<boolean> {
  return (await upnpLocation()) !== null;
}

/** Maps the port with the first protocol that works, in the given order (NAT-PMP, PCP, UPnP by default). */
export async function mapPort(gateway: string, clientIp: string, internalPort: number, order: Mapping['protocol'][] = ['NAT-PMP', 'PCP', 'UPnP']): Promise<Mapping | null> {
  for (const p of order) {
    const m = p === 'NAT-PMP' ? await natpmpMap(gateway, internalPort) : p === 'PCP' ? await pcpMap(gateway, clientIp, internalPort) : await upnpMap(clientIp, internalPort);
    if (m) return m;
  }
  return null;
}

/** The local address that faces the gateway (for PCP and UPnP, which name the internal client). */
export async function addressTowards(gateway: string): Promise<string | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.on('error', () => (s.close(), resolve(null)));
    // connect() on UDP sends nothing: it only asks the kernel which source address it would use
    s.connect(NATPMP_PORT, gateway, () => {
      const a = s.address().address;
      s.close();
      resolve(a);
    });
  });
}

/** What the gateway offers, for netcheck's PortMapping line. */
export async function probePortMapping(gateway = defaultGateway()): Promise<string[]> {
  if (!gateway) return [];
  const [upnp, pmp, pcp] = await Promise.all([upnpAvailable(), exchange(gateway, NATPMP_PORT, Buffer.from([0, 0]), (b) => b.length >= 12 && b[1] === 128), pcpAvailable(gateway)]);
  const out: string[] = [];
  if (upnp) out.push('UPnP');
  if (pmp) out.push('NAT-PMP');
  if (pcp) out.push('PCP');
  return out;
}
