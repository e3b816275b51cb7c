// Control's own liveness signal for map streams. A node whose link is cut
// sends no FIN or RST: its stream looks alive until TCP gives up on the
// unacknowledged data, which takes minutes (tcp_retries2). Control writes a
// keepalive line every MAP_KEEPALIVE_MS, so there is always recent data in
// flight, and sets TCP_USER_TIMEOUT on the stream's socket: data unacknowledged
// for STREAM_USER_TIMEOUT_MS closes the connection, the stream ends, and the
// node is offline (its routes fail over) within about the sum of the two.
// TCP keepalive probes cover a stream whose writes are blocked.
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
/** TCP keepalive probes start after this much idle time (they matter when nothing else is sent). */
export const STREAM_TCP_KEEPALIVE_IDLE_MS = 3_000;

type SetSockOpt = (fd: number, level: number, name: number, val: Buffer, len: number) => number;
let setsockopt: SetSockOpt | null = null;

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
