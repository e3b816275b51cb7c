// The text codec of the WireGuard cross-platform UAPI (wireguard.com/xplatform):
// `set=1` requests parsed into a UapiSetRequest, device snapshots formatted as
// `get=1` answers, in the key order wireguard-go uses so `wg` sees the same.
import { isIPv4, isIPv6 } from 'node:net';
import { bytesToIp, ipToBytes } from './ippacket.js';
import { UapiError, type UapiCidr, type UapiDeviceSnapshot, type UapiEndpoint, type UapiPeerChange, type UapiSetRequest } from './uapi-types.js';

// wireguard-go answers negative errno values (its ipc package)
export const UAPI_EIO = -5;
export const UAPI_EINVAL = -22;
export const UAPI_EPROTO = -71;

const invalid = (msg: string): UapiError => new UapiError(UAPI_EINVAL, msg);

function parseKey(value: string, what: string): Buffer {
  if (!/^[0-9a-f]{64}$/.test(value)) throw invalid(`${what}: not 64 lowercase hex characters`);
  return Buffer.from(value, 'hex');
}

function parseUint(value: string, max: number, what: string): number {
  if (!/^\d{1,10}$/.test(value)) throw invalid(`${what}: "${value}" is not a number`);
  const n = Number(value);
  if (n > max) throw invalid(`${what}: ${n} exceeds ${max}`);
  return n;
}

export function parseEndpoint(value: string): UapiEndpoint {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:]+):(\d+)$/.exec(value);
  if (!m) throw invalid(`endpoint: "${value}" is not IP:PORT`);
  const address = m[1]!.replace(/%.*$/, '');
  if (!isIPv4(address) && !isIPv6(address)) throw invalid(`endpoint: "${m[1]}" is not an IP address`);
  const port = parseUint(m[2]!, 65535, 'endpoint port');
  return { address: isIPv6(address) ? bytesToIp(ipToBytes(address)) : address, port };
}

export function parseCidr(value: string): UapiCidr {
  const slash = value.indexOf('/');
  const addr = slash < 0 ? value : value.slice(0, slash);
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0;
  if (!family) throw invalid(`allowed_ip: "${value}" is not an IP prefix`);
  const max = family === 4 ? 32 : 128;
  const bits = slash < 0 ? max : parseUint(value.slice(slash + 1), max, 'allowed_ip prefix length');
  const b = ipToBytes(addr);
  for (let i = bits; i < max; i++) b[i >> 3]! &= ~(1 << (7 - (i & 7)));
  return { address: bytesToIp(b), bits, family };
}

/** Parses the body of a `set=1` request (the lines after `set=1`, without the final blank line). */
export function parseSetRequest(text: string): UapiSetRequest {
  const req: UapiSetRequest = { replacePeers: false, peers: [] };
  let peer: UapiPeerChange | null = null;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new UapiError(UAPI_EPROTO, `line "${line}" has no "="`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'public_key') {
      peer = { publicKey: parseKey(value, 'public_key'), remove: false, updateOnly: false, replaceAllowedIps: false, allowedIps: [] };
      req.peers.push(peer);
      continue;
    }
    if (!peer) {
      switch (key) {
        case 'private_key':
          req.privateKey = parseKey(value, 'private_key');
          break;
        case 'listen_port':
          req.listenPort = parseUint(value, 65535, 'listen_port');
          break;
        case 'fwmark':
          req.fwmark = value === '' ? 0 : parseUint(value, 0xffffffff, 'fwmark');
          break;
        case 'replace_peers':
          if (value !== 'true') throw invalid('replace_peers: only "true" is valid');
          req.replacePeers = true;
          break;
        default:
          throw invalid(`invalid device key "${key}"`);
      }
      continue;
    }
    switch (key) {
      case 'remove':
        if (value !== 'true') throw invalid('remove: only "true" is valid');
        peer.remove = true;
        break;
      case 'update_only':
        if (value !== 'true') throw invalid('update_only: only "true" is valid');
        peer.updateOnly = true;
        break;
      case 'preshared_key':
        peer.presharedKey = parseKey(value, 'preshared_key');
        break;
      case 'endpoint':
        peer.endpoint = parseEndpoint(value);
        break;
      case 'persistent_keepalive_interval':
        peer.persistentKeepaliveSeconds = parseUint(value, 65535, 'persistent_keepalive_interval');
        break;
      case 'replace_allowed_ips':
        if (value !== 'true') throw invalid('replace_allowed_ips: only "true" is valid');
        peer.replaceAllowedIps = true;
        break;
      case 'allowed_ip':
        peer.allowedIps.push(parseCidr(value));
        break;
      case 'protocol_version':
        if (value !== '1') throw invalid(`protocol_version ${value} is not supported`);
        break;
      default:
        throw invalid(`invalid peer key "${key}"`);
    }
  }
  return req;
}

function formatEndpoint(ep: UapiEndpoint): string {
  return ep.address.includes(':') ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`;
}

/** The lines of a `get=1` answer, without the trailing `errno=0` (the server adds it). */
export function formatGetResponse(s: UapiDeviceSnapshot): string {
  const l: string[] = [];
  if (s.privateKey) l.push(`private_key=${s.privateKey.toString('hex')}`);
  if (s.listenPort) l.push(`listen_port=${s.listenPort}`);
  if (s.fwmark) l.push(`fwmark=${s.fwmark}`);
  for (const p of s.peers) {
    l.push(`public_key=${p.publicKey.toString('hex')}`);
    l.push(`preshared_key=${(p.presharedKey ?? Buffer.alloc(32)).toString('hex')}`);
    l.push('protocol_version=1');
    if (p.endpoint) l.push(`endpoint=${formatEndpoint(p.endpoint)}`);
    l.push(`last_handshake_time_sec=${p.lastHandshakeTimeSec}`);
    l.push(`last_handshake_time_nsec=${p.lastHandshakeTimeNsec}`);
    l.push(`tx_bytes=${p.txBytes}`);
    l.push(`rx_bytes=${p.rxBytes}`);
    l.push(`persistent_keepalive_interval=${p.persistentKeepaliveSeconds}`);
    for (const a of p.allowedIps) l.push(`allowed_ip=${a.address}/${a.bits}`);
  }
  return l.map((x) => x + '\n').join('');
}
