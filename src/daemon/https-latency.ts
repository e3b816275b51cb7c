// Latency to a relay over HTTPS, for when UDP (and so STUN) is blocked: the
// time of one small GET on an established connection's worth of work. No
// secret travels, so the certificate is not checked here.
import { request } from 'node:https';

export function httpsLatency(url: string, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request(new URL('/relay/probe', url), { rejectUnauthorized: false, timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(performance.now() - t0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}
