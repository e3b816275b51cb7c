// Connection limits for the control server's listeners (the HTTPS port and the
// admin unix socket): a cap on open connections in total, a cap per source
// address, and an idle deadline — a connection that has not delivered one
// complete request (headers parsed) within `idleMs` of being accepted, TLS
// handshake included, is closed. A connection that did send a request is left
// to Node's keep-alive timeout between requests; a map stream, whose response
// never ends and which is quiet by design, is not cut.
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { isIPv4 } from 'node:net';
import { ipBytes, parseIp } from '../util/netaddr.js';

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

/**
 * The per-source key: an IPv4 address, or the /64 of an IPv6 address (one
 * host usually has a whole /64 to pick addresses from).
 */
export function sourceKey(remote: string | undefined): string {
  if (!remote) return 'unknown';
  if (remote.startsWith('::ffff:') && isIPv4(remote.slice(7))) return remote.slice(7);
  try {
    const ip = parseIp(remote);
    return ip.family === 4 ? ip.text : `${ipBytes(ip).subarray(0, 8).toString('hex')}/64`;
  } catch {
    return remote;
  }
}

/** Applies `limits` to `server` (an http or https server, before it listens). */
export function guardConnections(server: HttpServer, limits: ConnectionLimits): ConnectionStats {
  const stats: ConnectionStats = { open: 0, refusedOverTotal: 0, refusedOverSource: 0, closedIdle: 0 };
  const perSource = new Map<string, number>();
  const idleTimers = new WeakMap<Socket, NodeJS.Timeout>();
  // net.Server closes connections beyond this as soon as they are accepted, before any TLS work
  server.maxConnections = limits.maxConnections;
  server.on('drop', () => stats.refusedOverTotal++);
  // between requests on a kept-alive connection, the same idle allowance
  server.keepAliveTimeout = limits.idleMs;
  server.on('connection', (socket: Socket) => {
    const key = sourceKey(socket.remoteAddress);
    if (limits.maxPerSource !== null) {
      const n = perSource.get(key) ?? 0;
      if (n >= limits.maxPerSource) {
        stats.refusedOverSource++;
        socket.destroy();
        return;
      }
      perSource.set(key, n + 1);
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
      if (limits.maxPerSource === null) return;
      const left = (perSource.get(key) ?? 1) - 1;
      if (left > 0) perSource.set(key, left);
      else perSource.delete(key);
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
