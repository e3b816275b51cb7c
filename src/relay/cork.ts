// Write coalescing for relay connections (server and client side).
import type { Duplex } from 'node:stream';

/**
 * Frames written in one turn of the event loop go out together: the socket is
 * corked at the first write and uncorked on the next tick, so TLS seals one
 * record of many frames instead of one small record per packet.
 */
const corked = new WeakSet<Duplex>();
export function corkedWrite(sock: Duplex, buf: Buffer): void {
  if (!corked.has(sock)) {
    corked.add(sock);
    sock.cork();
    process.nextTick(() => {
      corked.delete(sock);
      sock.uncork();
    });
  }
  sock.write(buf);
}

