// --verify-clients: ask the control server whether a node key belongs to the
// network before relaying for it, with no local daemon needed. Answers are
// cached briefly so a reconnect storm does not become a storm on control.
import { readFileSync } from '../util/cjs.js';
import { request } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { keyToText } from '../crypto/keys.js';

const CACHE_MS = 30_000;
const VERIFY_TIMEOUT_MS = 5000;

export class ClientVerifier {
  private readonly cache = new Map<string, { known: boolean; untilMs: number }>();
  private readonly caPem: string | null;

  constructor(private readonly url: string, caFile?: string) {
    this.caPem = caFile ? readFileSync(caFile, 'utf8') : null;
  }

  async known(nodeKey: Buffer): Promise<boolean> {
    const k = keyToText(nodeKey);
    const c = this.cache.get(k);
    if (c && c.untilMs > Date.now()) return c.known;
    const known = await this.ask(k).catch(() => false);
    this.cache.set(k, { known, untilMs: Date.now() + CACHE_MS });
    return known;
  }

  private ask(key: string): Promise<boolean> {
    const u = new URL(`/meshctl/v1/verify?nodeKey=${encodeURIComponent(key)}`, this.url);
    const pinned = this.caPem ? new X509Certificate(this.caPem) : null;
    return new Promise((resolve, reject) => {
      const req = request(
        u,
        {
          timeout: VERIFY_TIMEOUT_MS,
          ...(this.caPem ? { ca: this.caPem, checkServerIdentity: (h: string, cert: PeerCertificate) => (pinned && cert.raw && pinned.raw.equals(cert.raw) ? undefined : checkServerIdentity(h, cert)) } : {}),
        },
        (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }
}

