// One datagram with its own TTL (IPv4) or hop limit (IPv6), set per packet by
// an IP_TTL / IPV6_HOPLIMIT control message on sendmsg(2) through koffi. The
// socket is the device's shared UDP socket: a setsockopt(IP_TTL) on it would
// change every WireGuard packet sent meanwhile, a cmsg changes only this one.
// Path selection sends its hole-punching "openers" this way: they open our
// own NAT towards a peer and expire before the peer's router (docs/nat.md).
import { koffi } from '../../util/koffi.js';
import { ipBytes, parseIp, type IpFamily } from '../../util/netaddr.js';
import type { Endpoint } from './endpoint.js';

const AF_INET = 2;
const AF_INET6 = 10;
const IPPROTO_IP = 0;
const IP_TTL = 2; // linux/in.h
const IPPROTO_IPV6 = 41;
const IPV6_HOPLIMIT = 52; // linux/in6.h
const MSG_DONTWAIT = 0x40;
/** struct msghdr on x86_64/aarch64: name, namelen (+pad), iov, iovlen, control, controllen, flags (+pad) */
const MSGHDR_SIZE = 56;
const IOV_SIZE = 16;
const NAME_SIZE = 28; // sizeof(struct sockaddr_in6), room for either family
/** CMSG_SPACE(sizeof(int)) on 64-bit: a 16-byte cmsghdr and the int, padded to 8 */
export const CMSG_SPACE_INT = 24;
/** CMSG_LEN(sizeof(int)) */
const CMSG_LEN_INT = 20;
/** Largest datagram this path sends: disco pings are ~120 bytes; nothing big is ever sent with a short TTL. */
export const TTL_SEND_MAX_BYTES = 512;

/** The control message that sets one datagram's TTL (IPv4) or hop limit (IPv6). Throws on a TTL outside 1–255. */
export function ttlCmsg(family: IpFamily, ttl: number): Buffer {
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new RangeError(`TTL ${ttl} is outside 1–255`);
  const b = Buffer.alloc(CMSG_SPACE_INT);
  b.writeBigUInt64LE(BigInt(CMSG_LEN_INT), 0); // cmsg_len
  b.writeInt32LE(family === 4 ? IPPROTO_IP : IPPROTO_IPV6, 8); // cmsg_level
  b.writeInt32LE(family === 4 ? IP_TTL : IPV6_HOPLIMIT, 12); // cmsg_type
  b.writeInt32LE(ttl, 16);
  return b;
}

/** The sockaddr of an endpoint (sockaddr_in or sockaddr_in6), or null when the address does not parse as `family`. */
export function sockaddr(family: IpFamily, ep: Endpoint): Buffer | null {
  let ip;
  try {
    ip = parseIp(ep.address);
  } catch {
    return null;
  }
  if (ip.family !== family || !Number.isInteger(ep.port) || ep.port < 1 || ep.port > 65_535) return null;
  const b = Buffer.alloc(family === 4 ? 16 : 28);
  b.writeUInt16LE(family === 4 ? AF_INET : AF_INET6, 0);
  b.writeUInt16BE(ep.port, 2);
  ipBytes(ip).copy(b, family === 4 ? 4 : 8);
  return b;
}

type SendMsg = (fd: number, msg: unknown, flags: number) => number;
let sendmsgFn: SendMsg | null | undefined;

function bindSendmsg(): SendMsg | null {
  if (sendmsgFn === undefined) {
    try {
      sendmsgFn = process.arch === 'x64' || process.arch === 'arm64' ? (koffi.load('libc.so.6').func('int sendmsg(int, void *, int)') as SendMsg) : null;
    } catch {
      sendmsgFn = null;
    }
  }
  return sendmsgFn;
}

/** Sends single datagrams with a per-packet TTL; its native message memory is allocated once. */
export class TtlSender {
  private readonly mem: unknown;
  private readonly view: Buffer;
  private readonly base: bigint;
  private readonly nameOff = MSGHDR_SIZE + IOV_SIZE;
  private readonly cmsgOff = this.nameOff + NAME_SIZE + 4; // 8-aligned
  private readonly dataOff = this.cmsgOff + CMSG_SPACE_INT;

  /** null where sendmsg cannot be called (another architecture, no libc) */
  static create(family: IpFamily): TtlSender | null {
    const fn = bindSendmsg();
    return fn ? new TtlSender(family, fn) : null;
  }

  private constructor(
    private readonly family: IpFamily,
    private readonly fn: SendMsg,
  ) {
    const size = this.dataOff + TTL_SEND_MAX_BYTES;
    this.mem = koffi.alloc('uint8', size);
    this.view = Buffer.from(koffi.view(this.mem, size));
    this.view.fill(0);
    this.base = koffi.address(this.mem);
    const v = this.view;
    v.writeBigUInt64LE(this.base + BigInt(this.nameOff), 0); // msg_name
    v.writeBigUInt64LE(this.base + BigInt(MSGHDR_SIZE), 16); // msg_iov
    v.writeBigUInt64LE(1n, 24); // msg_iovlen
    v.writeBigUInt64LE(this.base + BigInt(this.cmsgOff), 32); // msg_control
    v.writeBigUInt64LE(BigInt(CMSG_SPACE_INT), 40); // msg_controllen
    v.writeBigUInt64LE(this.base + BigInt(this.dataOff), MSGHDR_SIZE); // iov_base
  }

  /** One datagram to `ep` on socket `fd` with this TTL; false when it could not be sent (bad endpoint, too big, an errno). */
  send(fd: number, buf: Buffer, ep: Endpoint, ttl: number): boolean {
    if (fd < 0 || buf.length > TTL_SEND_MAX_BYTES) return false;
    const name = sockaddr(this.family, ep);
    if (!name) return false;
    const v = this.view;
    name.copy(v, this.nameOff);
    v.writeUInt32LE(name.length, 8); // msg_namelen
    ttlCmsg(this.family, ttl).copy(v, this.cmsgOff);
    buf.copy(v, this.dataOff);
    v.writeBigUInt64LE(BigInt(buf.length), MSGHDR_SIZE + 8); // iov_len
    return this.fn(fd, this.mem, MSG_DONTWAIT) === buf.length;
  }
}
