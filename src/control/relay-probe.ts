// The control server vouches for relays: it reads each relay's certificate
// fingerprint and puts it in the relay map, so nodes pin self-signed relays
// with no extra flag (they already trust the control server).
import { connect } from 'node:tls';
import type { RelayRegion } from '../netmap/types.js';

const PROBE_TIMEOUT_MS = 5000;

export function relayFingerprint(url: string): Promise<string | null> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const s = connect({
      host,
      port: Number(u.port || 443),
      rejectUnauthorized: false,
      timeout: PROBE_TIMEOUT_MS,
      servername: /^[\d.]+$|:/.test(host) ? undefined : host,
    });
    const done = (v: string | null): void => {
      s.destroy();
      resolve(v);
    };
    s.once('secureConnect', () => done(s.getPeerCertificate().fingerprint256?.replace(/:/g, '').toLowerCase() ?? null));
    s.once('error', () => done(null));
    s.once('timeout', () => done(null));
  });
}

export async function probeRelays(relays: RelayRegion[]): Promise<RelayRegion[]> {
  return Promise.all(relays.map(async (r) => ({ ...r, certFingerprint: (await relayFingerprint(r.url)) ?? r.certFingerprint })));
}
