// The event loop's own reads of the TUN fd (see util/reader-mode.ts for when):
// libuv watches a duplicate of the fd as a pipe stream and reads each packet
// into one reused buffer, so a quiet tunnel costs no thread hand-over. Node has
// no public API for a stream over an arbitrary fd; the pipe handle of
// process.binding('pipe_wrap') is the documented-deprecated way in, and any
// failure leaves reading to the thread.
import net from 'node:net';
import { bindLibc } from './libc.js';

interface PipeHandle {
  open(fd: number): number;
}
interface PipeWrap {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
}

export interface MainTunReader {
  pause(): void;
  resume(): void;
  close(): void;
}

/** null when the event loop cannot watch the fd; the reader thread then does all reads. */
export function startMainTunReader(fd: number, readMax: number, onRead: (buf: Buffer, n: number) => void, log: (m: string) => void): MainTunReader | null {
  let socket: net.Socket;
  try {
    const { Pipe, constants } = (process as unknown as { binding(name: string): PipeWrap }).binding('pipe_wrap');
    const dup = bindLibc().dup(fd);
    if (dup < 0) return null;
    const handle = new Pipe(constants.SOCKET);
    if (handle.open(dup) !== 0) return null;
    const buffer = Buffer.allocUnsafe(readMax);
    socket = new net.Socket({
      handle,
      readable: true,
      writable: false,
      manualStart: true,
      onread: { buffer, callback: (n: number, buf: Buffer) => void onRead(buf, n) },
    } as net.SocketConstructorOpts);
  } catch (err) {
    log(`event-loop TUN reads unavailable (${(err as Error).message}); the reader thread reads`);
    return null;
  }
  socket.on('error', (err) => log(`TUN read on the event loop failed: ${err.message}`));
  socket.unref();
  return {
    pause: () => void socket.pause(),
    resume: () => void socket.resume(),
    close: () => void socket.destroy(),
  };
}
