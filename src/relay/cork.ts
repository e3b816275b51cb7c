// Write coalescing for relay connections (server and client side).
import type { Duplex } from 'node:stream';

interface Pending {
  frames: Buffer[];
  bytes: number;
}

/**
 * Frames written in one turn of the event loop go out as one write on the
 * next tick: one pass through the stream machinery and one TLS record per
 * ~16 KiB instead of one of each per packet (docs/performance.md, "Relay").
 */
const pending = new WeakMap<Duplex, Pending>();

export function corkedWrite(sock: Duplex, buf: Buffer): void {
  let p = pending.get(sock);
  if (!p) {
    p = { frames: [], bytes: 0 };
    pending.set(sock, p);
    process.nextTick(flush, sock);
  }
  p.frames.push(buf);
  p.bytes += buf.length;
}

/** Bytes queued in this turn and not yet handed to the socket. */
export function pendingBytes(sock: Duplex): number {
  return pending.get(sock)?.bytes ?? 0;
}

function flush(sock: Duplex): void {
  const p = pending.get(sock);
  pending.delete(sock);
  if (!p || sock.destroyed) return;
  sock.write(p.frames.length === 1 ? p.frames[0]! : Buffer.concat(p.frames, p.bytes));
}
