// The few libc calls Node has no API for, bound once through koffi.
import { koffi } from '../util/koffi.js';

let lib: ReturnType<typeof koffi.load> | null = null;
function libc(): ReturnType<typeof koffi.load> {
  lib ??= koffi.load('libc.so.6');
  return lib;
}

export const TUNSETIFF = 0x400454ca; // _IOW('T', 202, int)
export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const TUNSETOFFLOAD = 0x400454d0; // _IOW('T', 208, unsigned int)
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const POLLIN = 0x0001;
/** struct ifreq: the interface name (IFNAMSIZ bytes), then a union (flags, MTU, …) at IFNAMSIZ */
export const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;

/** A zeroed struct ifreq naming `ifname` (at most IFNAMSIZ - 1 bytes; callers validate names). */
export function ifreq(ifname: string): Buffer {
  const ifr = Buffer.alloc(IFREQ_SIZE);
  ifr.write(ifname, 0, IFNAMSIZ - 1, 'ascii');
  return ifr;
}

export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCSIFMTU = 0x8922;
export const IFF_UP = 0x0001;
export const AF_INET = 2;
export const SOCK_DGRAM_CLOEXEC = 2 | 0o2000000;
export const AF_NETLINK = 16;
export const SOCK_RAW_CLOEXEC = 3 | 0o2000000;
export const NETLINK_ROUTE = 0;
export const SOL_NETLINK = 270;
/** acks carry only the request's header, not the whole request */
export const NETLINK_CAP_ACK = 10;
/** error acks carry the kernel's message ("Nexthop device is not up") */
export const NETLINK_EXT_ACK = 11;
export const MSG_DONTWAIT = 0x40;
/** recv returns the datagram's real length even when the buffer was shorter */
export const MSG_TRUNC = 0x20;

export interface Libc {
  ioctl(fd: number, req: number, arg: Buffer): number;
  /** ioctl whose argument is a value, not a pointer (TUNSETOFFLOAD) */
  ioctlValue(fd: number, req: number, value: number): number;
  read(fd: number, buf: Uint8Array, count: number): number;
  poll(fds: Buffer, nfds: number, timeoutMs: number): number;
  dup(fd: number): number;
  socket(domain: number, type: number, protocol: number): number;
  close(fd: number): number;
  bind(fd: number, addr: Buffer, addrlen: number): number;
  setsockoptInt(fd: number, level: number, name: number, value: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number): number;
  /** `addrlen` is a 4-byte buffer holding the size of `addr` on entry and the sender's address size on return */
  recvfrom(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: Buffer): number;
  /** 0 when there is no such interface */
  ifNameToIndex(name: string): number;
  strerror(errno: number): string;
  errno(): number;
}

let bound: Libc | null = null;
export function bindLibc(): Libc {
  if (bound) return bound;
  const l = libc();
  const ioctl = l.func('int ioctl(int, unsigned long, void *)');
  const ioctlValue = l.func('int ioctl(int, unsigned long, unsigned long)');
  const read = l.func('long read(int, void *, unsigned long)');
  const poll = l.func('int poll(void *, unsigned long, int)');
  const dup = l.func('int dup(int)');
  const socket = l.func('int socket(int, int, int)');
  const close = l.func('int close(int)');
  const bind = l.func('int bind(int, void *, unsigned int)');
  const setsockopt = l.func('int setsockopt(int, int, int, void *, unsigned int)');
  const sendto = l.func('long sendto(int, void *, unsigned long, int, void *, unsigned int)');
  const recvfrom = l.func('long recvfrom(int, void *, unsigned long, int, void *, void *)');
  const ifNameToIndex = l.func('unsigned int if_nametoindex(const char *)');
  const strerror = l.func('const char *strerror(int)');
  bound = {
    ioctl: (fd, req, arg) => ioctl(fd, req, arg) as number,
    ioctlValue: (fd, req, value) => ioctlValue(fd, req, value) as number,
    read: (fd, buf, count) => Number(read(fd, buf, count)),
    poll: (fds, n, t) => poll(fds, n, t) as number,
    dup: (fd) => dup(fd) as number,
    socket: (d, t, p) => socket(d, t, p) as number,
    close: (fd) => close(fd) as number,
    bind: (fd, addr, len) => bind(fd, addr, len) as number,
    setsockoptInt: (fd, level, name, value) => {
      const v = Buffer.from(new Int32Array([value]).buffer); // an int in the host's byte order
      return setsockopt(fd, level, name, v, 4) as number;
    },
    sendto: (fd, buf, len, flags, addr, addrlen) => Number(sendto(fd, buf, len, flags, addr, addrlen)),
    recvfrom: (fd, buf, len, flags, addr, addrlen) => Number(recvfrom(fd, buf, len, flags, addr, addrlen)),
    ifNameToIndex: (name) => ifNameToIndex(name) as number,
    strerror: (errno) => String(strerror(errno) ?? `errno ${errno}`),
    errno: () => koffi.errno(),
  };
  return bound;
}
