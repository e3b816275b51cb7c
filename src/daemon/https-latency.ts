// Latency to a relay over HTTPS, for when UDP (and so STUN) is blocked: the
// time of one small GET on an established connection's worth of work. No
// secret travels, so the certificate is not checked here.
import { request } from 'node:https';
import { markedConnection } from '../util/marked-socket.js';

export function httpsLatency(url: string, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const u = new URL('/relay/probe', url);
    // marked like every socket of meshctl's own, so an exit node's default route never carries it
    const createConnection = markedConnection(u.hostname, Number(u.port || 443), { rejectUnauthorized: false });
    const req = request(u, { rejectUnauthorized: false, timeout: timeoutMs, agent: false, createConnection }, (res) => {
      res.resume();
      res.on('end', () => resolve(performance.now() - t0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}
