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

export interface Libc {
  ioctl(fd: number, req: number, arg: Buffer): number;
  /** ioctl whose argument is a value, not a pointer (TUNSETOFFLOAD) */
  ioctlValue(fd: number, req: number, value: number): number;
  read(fd: number, buf: Uint8Array, count: number): number;
  poll(fds: Buffer, nfds: number, timeoutMs: number): number;
  dup(fd: number): number;
  socket(domain: number, type: number, protocol: number): number;
  close(fd: number): number;
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
  bound = {
    ioctl: (fd, req, arg) => ioctl(fd, req, arg) as number,
    ioctlValue: (fd, req, value) => ioctlValue(fd, req, value) as number,
    read: (fd, buf, count) => Number(read(fd, buf, count)),
    poll: (fds, n, t) => poll(fds, n, t) as number,
    dup: (fd) => dup(fd) as number,
    socket: (d, t, p) => socket(d, t, p) as number,
    close: (fd) => close(fd) as number,
    errno: () => koffi.errno(),
  };
  return bound;
}
