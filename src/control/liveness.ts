// Control's own liveness signal for map streams. A node whose link is cut
// sends no FIN or RST: its stream looks alive until TCP gives up on the
// unacknowledged data, which takes minutes (tcp_retries2). Control writes a
// keepalive line every MAP_KEEPALIVE_MS, so there is always recent data in
// flight, and sets TCP_USER_TIMEOUT on the stream's socket: data unacknowledged
// for STREAM_USER_TIMEOUT_MS closes the connection, the stream ends, and the
// node is offline (its routes fail over) within about the sum of the two.
// TCP keepalive probes cover a stream whose writes are blocked. A stream
// still taking in its first map (megabytes at thousands of peers, read by a
// node that may be busy for many seconds during a resync storm) gets a longer
// allowance, and the short one once that map is acknowledged: cut at 7 s, a
// slow but live reader would reconnect for yet another whole map.
import type { Socket } from 'node:net';
import { koffi } from '../util/koffi.js';

const IPPROTO_TCP = 6;
const TCP_USER_TIMEOUT = 18; // linux/tcp.h
/**
 * Unacknowledged data older than this closes a stream's connection. With a
 * keepalive line every 3 s (MAP_KEEPALIVE_MS) a cut link is noticed in at most
 * ~10 s, inside the 15 s failover goal; a healthy link acknowledges within a
 * round trip, so 7 s leaves room for seconds of loss or a slow satellite path.
 */
export const STREAM_USER_TIMEOUT_MS = 7_000;
/**
 * TCP_USER_TIMEOUT while a stream's first map is on its way. A whole map of 5,000 peers is ~4 MB; after a control
 * restart thousands of nodes parse theirs at once, and a node's window may stay full (its reader making progress,
 * slowly) for tens of seconds. A node whose link dies during its first map is noticed this late instead of in ~10 s.
 */
export const FIRST_MAP_USER_TIMEOUT_MS = 60_000;
/**
 * The first map counts as taken in once less than this is left unacknowledged and nothing waits in the process: the
 * tail of a map, a few deltas or keepalives; what is left must then be acknowledged within the short timeout.
 */
export const FIRST_MAP_TAKEN_BELOW_BYTES = 64 * 1024;
/** TCP keepalive probes start after this much idle time (they matter when nothing else is sent). */
export const STREAM_TCP_KEEPALIVE_IDLE_MS = 3_000;

const SIOCOUTQ = 0x5411; // linux/sockios.h (TIOCOUTQ): bytes sent but not acknowledged, plus not yet sent
type SetSockOpt = (fd: number, level: number, name: number, val: Buffer, len: number) => number;
type Ioctl = (fd: number, request: number, out: Buffer) => number;
let setsockopt: SetSockOpt | null = null;
let ioctl: Ioctl | null = null;

/** The descriptor under a TLS or plain TCP socket (Node hides it; the handle has it on Linux). */
function fdOf(socket: Socket): number {
  const s = socket as unknown as { _handle?: { fd?: number }; _parent?: { _handle?: { fd?: number } } };
  const fd = s._handle?.fd ?? s._parent?._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

/**
 * Arms a map stream's socket: TCP keepalive, and TCP_USER_TIMEOUT where the
 * OS has it (Linux). Returns false (and the stream relies on keepalive lines
 * and TCP's own retries) when the option cannot be set.
 */
export function armStreamLiveness(socket: Socket, userTimeoutMs = STREAM_USER_TIMEOUT_MS): boolean {
  socket.setKeepAlive(true, STREAM_TCP_KEEPALIVE_IDLE_MS);
  return setStreamUserTimeout(socket, userTimeoutMs);
}

/** Sets TCP_USER_TIMEOUT on a stream's socket (Linux); false when it cannot be set. */
export function setStreamUserTimeout(socket: Socket, userTimeoutMs: number): boolean {
  if (process.platform !== 'linux') return false;
  const fd = fdOf(socket);
  if (fd < 0) return false;
  try {
    setsockopt ??= koffi.load('libc.so.6').func('int setsockopt(int, int, int, void *, uint32)') as SetSockOpt;
  } catch {
    return false;
  }
  // an unsigned int in host byte order
  const val = Buffer.from(new Uint32Array([userTimeoutMs]).buffer);
  return setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, val, 4) === 0;
}

/** Bytes the kernel holds for the socket not yet acknowledged by the peer (SIOCOUTQ), or null where that cannot be read. */
export function unacknowledgedBytes(socket: Socket): number | null {
  if (process.platform !== 'linux') return null;
  const fd = fdOf(socket);
  if (fd < 0) return null;
  try {
    ioctl ??= koffi.load('libc.so.6').func('int ioctl(int, unsigned long, void *)') as Ioctl;
  } catch {
    return null;
  }
  const out = Buffer.alloc(4);
  return ioctl(fd, SIOCOUTQ, out) === 0 ? out.readInt32LE(0) : null;
}

/**
 * Whether a stream's first map is taken in (see FIRST_MAP_TAKEN_BELOW_BYTES): `unsent` is what the process still
 * holds for it. Without SIOCOUTQ, an empty process buffer is taken for it.
 */
export function firstMapTaken(socket: Socket, unsent: number): boolean {
  if (unsent > 0) return false;
  return (unacknowledgedBytes(socket) ?? 0) < FIRST_MAP_TAKEN_BELOW_BYTES;
}
