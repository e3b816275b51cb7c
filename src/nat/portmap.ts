// Port mapping: ask the NAT in front of us to forward a public port to the
// WireGuard port, so peers behind any kind of NAT can reach us directly.
// NAT-PMP (RFC 6886) maps; PCP (RFC 6887) and UPnP IGD are probed so netcheck
// can say what the gateway offers. Each probe is one small UDP exchange with
// the default gateway; nothing is sent anywhere else. UPnP's discovery is a
// multicast anyone on the LAN can answer, so only answers from the gateway's
// own address count, and only URLs (the description's LOCATION, the
// controlURL) whose host is that address are fetched, without redirects and
// with bounded bodies.
import dgram from 'node:dgram';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from '../util/cjs.js';
import { markDgram, markedConnection } from '../util/marked-socket.js';
import { parseIp } from '../util/netaddr.js';

const NATPMP_PORT = 5351;
const SSDP_ADDR = '239.255.255.250';
const SSDP_PORT = 1900;
const PROBE_TIMEOUT_MS = 700;
/** Longest UPnP description or SOAP answer read: miniupnpd's description is ~3 KiB; a bigger body is not an IGD talking. */
export const MAX_UPNP_BODY_BYTES = 64 * 1024;

/** Where the SSDP search goes (the multicast group; tests aim it at a responder on loopback) and how long to wait. */
export interface UpnpOptions {
  ssdp?: { host: string; port: number };
  timeoutMs?: number;
}
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

type Accept = (b: Buffer, from: dgram.RemoteInfo) => boolean;

function exchange(host: string, port: number, req: Buffer, accept: Accept, timeoutMs = PROBE_TIMEOUT_MS): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (b: Buffer | null): void => {
      clearTimeout(t);
      s.close();
      resolve(b);
    };
    const t = setTimeout(() => done(null), timeoutMs);
    s.on('message', (m, from) => {
      if (accept(m, from)) done(m);
    });
    s.on('error', () => done(null));
    // bound first so the descriptor exists and carries meshctl's fwmark before the first datagram
    s.bind(0, () => {
      markDgram(s);
      s.send(req, port, host);
    });
  });
}

export interface Mapping {
  protocol: 'NAT-PMP' | 'PCP' | 'UPnP';
  external: string;
  internalPort: number;
  lifetimeS: number;
}

/** A usable public IPv4 address from 4 bytes: not 0.0.0.0 (RFC 6886: "no external address yet"). */
function ipv4At(b: Buffer, off: number): string | null {
  const ip = [...b.subarray(off, off + 4)].join('.');
  return ip === '0.0.0.0' ? null : ip;
}

/** NAT-PMP's answer to the external-address request (RFC 6886 §3.2): the address, or null for an error or no address. */
export function parseNatpmpAddress(b: Buffer): string | null {
  if (b.length < 12 || b[1] !== 128 || b.readUInt16BE(2) !== 0) return null;
  return ipv4At(b, 8);
}

/** NAT-PMP's answer to a UDP mapping request for `internalPort` (RFC 6886 §3.3), or null. */
export function parseNatpmpMapping(b: Buffer, internalPort: number): { externalPort: number; lifetimeS: number } | null {
  if (b.length < 16 || b[1] !== 129 || b.readUInt16BE(2) !== 0 || b.readUInt16BE(8) !== internalPort) return null;
  const externalPort = b.readUInt16BE(10);
  return externalPort === 0 ? null : { externalPort, lifetimeS: b.readUInt32BE(12) };
}

/** NAT-PMP: the gateway's external address, then a UDP mapping for `internalPort`. */
export async function natpmpMap(gateway: string, internalPort: number, lifetimeS = MAPPING_LIFETIME_S): Promise<Mapping | null> {
  const addr = await exchange(gateway, NATPMP_PORT, Buffer.from([0, 0]), (b, from) => from.address === gateway && b.length >= 12 && b[1] === 128);
  const ip = addr && parseNatpmpAddress(addr);
  if (!ip) return null;
  const req = Buffer.alloc(12);
  req[1] = 1; // map UDP
  req.writeUInt16BE(internalPort, 4);
  req.writeUInt16BE(internalPort, 6); // ask for the same port outside
  req.writeUInt32BE(lifetimeS, 8);
  const r = await exchange(
    gateway,
    NATPMP_PORT,
    req,
    (b, from) => from.address === gateway && b.length >= 16 && b[1] === 129 && b.readUInt16BE(8) === internalPort,
  );
  const m = r && parseNatpmpMapping(r, internalPort);
  if (!m) return null;
  return { protocol: 'NAT-PMP', external: `${ip}:${m.externalPort}`, internalPort, lifetimeS: m.lifetimeS };
}

/** NAT-PMP's deletion: a mapping request with lifetime 0. */
export async function natpmpUnmap(gateway: string, internalPort: number): Promise<void> {
  const req = Buffer.alloc(12);
  req[1] = 1;
  req.writeUInt16BE(internalPort, 4);
  await exchange(gateway, NATPMP_PORT, req, (b, from) => from.address === gateway && b[1] === 129);
}

function ipv4Mapped(ip: string): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16BE(0xffff, 10);
  ip.split('.').forEach((o, i) => (b[12 + i] = Number(o)));
  return b;
}

/** A PCP MAP response (RFC 6887 §11.4) to the request with `nonce`: the IPv4 mapping, or null (an error, or not IPv4). */
export function parsePcpMap(b: Buffer, nonce: Buffer): { external: string; lifetimeS: number } | null {
  if (b.length < 60 || b[0] !== 2 || b[1] !== 0x81 || b[3] !== 0 || !b.subarray(24, 36).equals(nonce)) return null;
  const ext = b.subarray(44, 60);
  if (!ext.subarray(0, 10).every((x) => x === 0) || ext.readUInt16BE(10) !== 0xffff) return null;
  const ip = ipv4At(ext, 12);
  const port = b.readUInt16BE(42);
  return ip && port !== 0 ? { external: `${ip}:${port}`, lifetimeS: b.readUInt32BE(4) } : null;
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
  const r = await exchange(
    gateway,
    NATPMP_PORT,
    req,
    (b, from) => from.address === gateway && b.length >= 60 && b[0] === 2 && b[1] === 0x81 && b.subarray(24, 36).equals(nonce),
  );
  const m = r && parsePcpMap(r, nonce);
  return m ? { protocol: 'PCP', internalPort, ...m } : null;
}

/** PCP answers an ANNOUNCE (RFC 6887 §14.1) with a version-2 response. */
async function pcpAvailable(gateway: string): Promise<boolean> {
  const req = Buffer.alloc(24);
  req[0] = 2; // version
  req[1] = 0; // request, opcode ANNOUNCE
  const r = await exchange(gateway, NATPMP_PORT, req, (b, from) => from.address === gateway && b.length >= 24 && b[0] === 2 && (b[1]! & 0x80) !== 0);
  return r !== null;
}

/** `url` when it is an http(s) URL on the gateway's own address, else null. */
function onGateway(url: string, base: string | undefined, gateway: string): string | null {
  let u: URL;
  try {
    u = new URL(url, base);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  if (u.username || u.password) return null;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  let ip: string;
  try {
    ip = parseIp(host).text;
  } catch {
    return null; // a name could resolve anywhere
  }
  return ip === parseIp(gateway).text ? u.toString() : null;
}

/** A body of at most MAX_UPNP_BODY_BYTES, or null. */
function boundedText(res: IncomingMessage): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_UPNP_BODY_BYTES) {
        res.destroy();
        return resolve(null);
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', () => resolve(null));
    res.on('close', () => resolve(null));
  });
}

interface GatewayRequest {
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
}

/**
 * GET or POST to the gateway only: no redirects (they could lead anywhere), bounded body. The
 * connection carries meshctl's fwmark (util/marked-socket.ts), as every socket of meshctl's own does.
 */
function gatewayFetch(url: string, init: GatewayRequest, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return resolve(null);
    }
    const tls = u.protocol === 'https:';
    const port = Number(u.port || (tls ? 443 : 80));
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const createConnection = markedConnection(host, port, tls ? {} : undefined);
    const req = (tls ? httpsRequest : httpRequest)(u, { method: init.method ?? 'GET', headers: init.headers, createConnection, timeout: timeoutMs }, (res) => {
      // a redirect or an error status is not followed: no answer
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
        res.resume();
        return resolve(null);
      }
      void boundedText(res).then(resolve);
    });
    const timer = setTimeout(() => req.destroy(), timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end(init.body);
  });
}

/** An absolute http(s) URL (relative to `base` if given), or null: a LAN device's text is not trusted to be one. */
function httpUrl(text: string, base?: string): string | null {
  try {
    const u = new URL(text, base);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.toString() : null;
  } catch {
    return null;
  }
}

/** An IGD's answer to an SSDP search: its description URL (any http(s) URL), or null if it is not a 200 from a gateway. */
export function parseSsdpResponse(b: Buffer): string | null {
  const text = b.toString('latin1');
  if (!/^HTTP\/1\.1 200/.test(text) || !/InternetGatewayDevice/i.test(text)) return null;
  const loc = /^location:[ \t]*(\S+)/im.exec(text)?.[1];
  return loc ? httpUrl(loc) : null;
}

/** The IGD's description URL, from an SSDP search answered by the gateway itself; null when it does not answer. */
async function upnpLocation(gateway: string, o: UpnpOptions = {}): Promise<string | null> {
  const target = o.ssdp ?? { host: SSDP_ADDR, port: SSDP_PORT };
  let gw: string;
  try {
    gw = parseIp(gateway).text;
  } catch {
    return null;
  }
  const msg = Buffer.from(
    `M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_ADDR}:${SSDP_PORT}\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n`,
  );
  // anyone on the LAN can answer a multicast search: only the gateway's own answer, with a LOCATION on the gateway, counts
  const usable = (b: Buffer): string | null => {
    const loc = parseSsdpResponse(b);
    return loc ? onGateway(loc, undefined, gw) : null;
  };
  const r = await exchange(target.host, target.port, msg, (b, from) => from.address === gw && usable(b) !== null, o.timeoutMs ?? PROBE_TIMEOUT_MS * 2);
  return r ? usable(r) : null;
}

const WAN_SERVICES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
];

/**
 * The WAN connection services of an IGD description, in WAN_SERVICES order,
 * each with the control URL that follows its serviceType (resolved against
 * `location`); services without a usable URL are left out. One linear scan
 * per service: the description comes from any device on the LAN.
 */
export function parseIgdDescription(desc: string, location: string): { service: string; controlUrl: string }[] {
  if (desc.length > MAX_UPNP_BODY_BYTES) return [];
  const out: { service: string; controlUrl: string }[] = [];
  for (const service of WAN_SERVICES) {
    const type = desc.indexOf(`<serviceType>${service}</serviceType>`);
    if (type < 0) continue;
    const open = desc.indexOf('<controlURL>', type);
    const close = open < 0 ? -1 : desc.indexOf('</controlURL>', open);
    const text = close < 0 ? '' : desc.slice(open + '<controlURL>'.length, close);
    const controlUrl = text && !text.includes('<') ? httpUrl(text, location) : null;
    if (controlUrl) out.push({ service, controlUrl });
  }
  return out;
}

/** The external address in a GetExternalIPAddress answer: a public-looking IPv4 address, or null. */
export function parseExternalIp(soapAnswer: string): string | null {
  const text = /<NewExternalIPAddress>([^<]{1,64})</.exec(soapAnswer)?.[1]?.trim();
  try {
    const ip = parseIp(text);
    return ip.family === 4 && ip.text !== '0.0.0.0' ? ip.text : null;
  } catch {
    return null;
  }
}

async function soap(controlUrl: string, service: string, action: string, args: Record<string, string | number>, timeoutMs: number): Promise<string | null> {
  const body = `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:${action} xmlns:u="${service}">${Object.entries(
    args,
  )
    .map(([k, v]) => `<${k}>${v}</${k}>`)
    .join('')}</u:${action}></s:Body></s:Envelope>`;
  const headers = { 'content-type': 'text/xml; charset="utf-8"', soapaction: `"${service}#${action}"` };
  return gatewayFetch(controlUrl, { method: 'POST', body, headers }, timeoutMs);
}

/** UPnP IGD: find the WAN connection service, ask for its external address, add a UDP port mapping. */
export async function upnpMap(
  gateway: string,
  clientIp: string,
  internalPort: number,
  lifetimeS = MAPPING_LIFETIME_S,
  o: UpnpOptions = {},
): Promise<Mapping | null> {
  const location = await upnpLocation(gateway, o);
  if (!location) return null;
  const httpTimeoutMs = PROBE_TIMEOUT_MS * 3;
  const desc = await gatewayFetch(location, {}, httpTimeoutMs);
  if (desc === null) return null;
  for (const { service, controlUrl: anyUrl } of parseIgdDescription(desc, location)) {
    // the control URL must be on the gateway too: a description could point the SOAP calls anywhere
    const controlUrl = onGateway(anyUrl, undefined, gateway);
    if (!controlUrl) continue;
    const ipAnswer = await soap(controlUrl, service, 'GetExternalIPAddress', {}, httpTimeoutMs);
    const ip = ipAnswer && parseExternalIp(ipAnswer);
    if (!ip) continue;
    const added = await soap(
      controlUrl,
      service,
      'AddPortMapping',
      {
        NewRemoteHost: '',
        NewExternalPort: internalPort,
        NewProtocol: 'UDP',
        NewInternalPort: internalPort,
        NewInternalClient: clientIp,
        NewEnabled: 1,
        NewPortMappingDescription: 'meshctl',
        NewLeaseDuration: lifetimeS,
      },
      httpTimeoutMs,
    );
    if (added !== null) return { protocol: 'UPnP', external: `${ip}:${internalPort}`, internalPort, lifetimeS };
  }
  return null;
}

async function upnpAvailable(gateway: string, o: UpnpOptions = {}): Promise<boolean> {
  return (await upnpLocation(gateway, o)) !== null;
}

/** Maps the port with the first protocol that works, in the given order (NAT-PMP, PCP, UPnP by default). */
export async function mapPort(
  gateway: string,
  clientIp: string,
  internalPort: number,
  order: Mapping['protocol'][] = ['NAT-PMP', 'PCP', 'UPnP'],
  upnp: UpnpOptions = {},
): Promise<Mapping | null> {
  for (const p of order) {
    const m =
      p === 'NAT-PMP'
        ? await natpmpMap(gateway, internalPort)
        : p === 'PCP'
          ? await pcpMap(gateway, clientIp, internalPort)
          : await upnpMap(gateway, clientIp, internalPort, MAPPING_LIFETIME_S, upnp);
    if (m) return m;
  }
  return null;
}

/** The local address that faces the gateway (for PCP and UPnP, which name the internal client). */
export async function addressTowards(gateway: string): Promise<string | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.on('error', () => (s.close(), resolve(null)));
    // connect() on UDP sends nothing: it only asks the kernel which source address it would use; marked first,
    // so the answer is the uplink's address even while an exit node's default route is in table 52
    s.bind(0, () => {
      markDgram(s);
      s.connect(NATPMP_PORT, gateway, () => {
        const a = s.address().address;
        s.close();
        resolve(a);
      });
    });
  });
}

/** What the gateway offers, for netcheck's PortMapping line. */
export async function probePortMapping(gateway = defaultGateway(), upnpOptions: UpnpOptions = {}): Promise<string[]> {
  if (!gateway) return [];
  const pmpAnswer: Accept = (b, from) => from.address === gateway && b.length >= 12 && b[1] === 128;
  const [upnp, pmp, pcp] = await Promise.all([
    upnpAvailable(gateway, upnpOptions),
    exchange(gateway, NATPMP_PORT, Buffer.from([0, 0]), pmpAnswer),
    pcpAvailable(gateway),
  ]);
  const out: string[] = [];
  if (upnp) out.push('UPnP');
  if (pmp) out.push('NAT-PMP');
  if (pcp) out.push('PCP');
  return out;
}
