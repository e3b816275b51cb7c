// systemd's readiness protocol (sd_notify(3)): a service of Type=notify sends
// `READY=1` once it serves, `STATUS=…` lines for `systemctl status`, and
// `STOPPING=1` when it begins to shut down, as one AF_UNIX datagram to the
// socket named in $NOTIFY_SOCKET (a path, or an abstract name written with a
// leading '@'). Node's net module has no datagram unix sockets, so the socket
// is made and the message sent through koffi. Without $NOTIFY_SOCKET (not run by
// systemd, or a Type other than notify) nothing is sent, and koffi is not even
// loaded: every CLI command reaches this module, and the native addon costs ~14 ms.
import type * as Koffi from 'koffi';
import { cjsRequire } from './cjs.js';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
/** sun_path in struct sockaddr_un: 108 bytes on Linux. */
const SUN_PATH_BYTES = 108;
/** A notification is a few short lines; systemd reads at most a page-sized datagram (NOTIFY_BUFFER_MAX is 4096). */
export const MAX_NOTIFY_BYTES = 4096;

interface Libc {
  socket: (domain: number, type: number, proto: number) => number;
  sendto: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number) => number;
  close: (fd: number) => number;
}
let libc: Libc | null = null;
function c(): Libc {
  if (libc) return libc;
  const koffi = cjsRequire('koffi') as typeof Koffi;
  const l = koffi.load('libc.so.6');
  libc = {
    socket: l.func('int socket(int, int, int)') as Libc['socket'],
    sendto: l.func('long sendto(int, void *, size_t, int, void *, uint32)') as Libc['sendto'],
    close: l.func('int close(int)') as Libc['close'],
  };
  return libc;
}

/** struct sockaddr_un for a path or an '@abstract' name, and its length; null when the name does not fit. */
export function unixAddress(name: string): { addr: Buffer; len: number } | null {
  const abstract = name.startsWith('@');
  const path = Buffer.from(abstract ? name.slice(1) : name, 'utf8');
  // a path needs its terminating NUL; an abstract name starts with a NUL and has none
  if (path.length === 0 || path.length + 1 > SUN_PATH_BYTES || path.includes(0)) return null;
  const addr = Buffer.alloc(2 + SUN_PATH_BYTES);
  addr.writeUInt16LE(AF_UNIX, 0);
  path.copy(addr, abstract ? 3 : 2);
  return { addr, len: 2 + (abstract ? 1 + path.length : path.length + 1) };
}

/**
 * Sends `state` (lines such as `READY=1`) to $NOTIFY_SOCKET. True when sent, false when there is no
 * socket to send to or the send failed: readiness is best effort, a service must run on without it.
 */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const name = env.NOTIFY_SOCKET;
  if (!name) return false;
  const target = unixAddress(name);
  const msg = Buffer.from(state, 'utf8');
  if (!target || msg.length === 0 || msg.length > MAX_NOTIFY_BYTES) return false;
  const fd = c().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  try {
    return c().sendto(fd, msg, msg.length, 0, target.addr, target.len) === msg.length;
  } finally {
    c().close(fd);
  }
}

/** One line for STATUS=: no newline can end it early and start a line systemd would take as another field. */
export const statusLine = (text: string): string => `STATUS=${text.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 256)}`;
