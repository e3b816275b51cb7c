// Connection limits for the control server's listeners (the HTTPS port and the
// admin unix socket): a cap on open connections in total, a cap per source
// address, and an idle deadline — a connection that has not delivered one
// complete request (headers parsed) within `idleMs` of being accepted, TLS
// handshake included, is closed. A connection that did send a request is left
// to Node's keep-alive timeout between requests; a map stream, whose response
// never ends and which is quiet by design, is not cut.
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { PerSourceCounter, sourceKey } from '../util/per-source.js';

export interface ConnectionLimits {
  /** open connections at once; more are closed as soon as they are accepted */
  maxConnections: number;
  /** open connections at once from one source (an IPv4 address or an IPv6 /64); null: no per-source cap (unix sockets) */
  maxPerSource: number | null;
  /** a connection must deliver its first complete request within this long of being accepted */
  idleMs: number;
}

export interface ConnectionStats {
  open: number;
  refusedOverTotal: number;
  refusedOverSource: number;
  closedIdle: number;
}

/** Applies `limits` to `server` (an http or https server, before it listens). */
export function guardConnections(server: HttpServer, limits: ConnectionLimits): ConnectionStats {
  const stats: ConnectionStats = { open: 0, refusedOverTotal: 0, refusedOverSource: 0, closedIdle: 0 };
  const perSource = limits.maxPerSource === null ? null : new PerSourceCounter(limits.maxPerSource);
  const idleTimers = new WeakMap<Socket, NodeJS.Timeout>();
  // net.Server closes connections beyond this as soon as they are accepted, before any TLS work
  server.maxConnections = limits.maxConnections;
  server.on('drop', () => stats.refusedOverTotal++);
  // between requests on a kept-alive connection, the same idle allowance
  server.keepAliveTimeout = limits.idleMs;
  server.on('connection', (socket: Socket) => {
    const key = sourceKey(socket.remoteAddress);
    if (perSource && !perSource.tryAdd(key)) {
      stats.refusedOverSource++;
      socket.destroy();
      return;
    }
    stats.open++;
    const timer = setTimeout(() => {
      stats.closedIdle++;
      socket.destroy();
    }, limits.idleMs);
    timer.unref();
    idleTimers.set(socket, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      stats.open--;
      perSource?.remove(key);
    });
  });
  server.on('request', (req: IncomingMessage) => {
    // on TLS, the request's socket wraps the accepted TCP socket (its `_parent`)
    const s = req.socket as Socket & { _parent?: Socket | null };
    const raw = s._parent ?? s;
    const timer = idleTimers.get(raw);
    if (timer) {
      clearTimeout(timer);
      idleTimers.delete(raw);
    }
  });
  return stats;
}
