// What the control server keeps in its state dir: the database, its X25519
// control key (nodes seal requests to it) and, unless the operator brings a
// certificate, a self-signed one made on first start and reused after.
import { existsSync, mkdirSync, readFileSync } from '../util/cjs.js';
import { networkInterfaces, hostname } from 'node:os';
import { join } from 'node:path';
import { createSelfSigned } from '../crypto/selfsigned.js';
import { generatePrivateKey, publicKeyOf } from '../crypto/x25519.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export const stateFiles = (dir: string) => ({
  db: join(dir, 'control.db'),
  controlKey: join(dir, 'control.key'),
  cert: join(dir, 'tls', 'cert.pem'),
  key: join(dir, 'tls', 'key.pem'),
  adminSocket: join(dir, 'admin.sock'),
});

export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export function loadControlKey(dir: string): { privateKey: Buffer; publicKey: Buffer } {
  const f = stateFiles(dir).controlKey;
  let priv: Buffer;
  if (existsSync(f)) {
    priv = Buffer.from(readFileSync(f, 'utf8').trim(), 'base64');
    if (priv.length !== 32) throw new Error(`${f} is not a 32-byte base64 key: restore it from a backup (nodes trust it)`);
  } else {
    priv = generatePrivateKey();
    writeFileAtomic(f, priv.toString('base64') + '\n');
  }
  return { privateKey: priv, publicKey: publicKeyOf(priv) };
}

/** Names a self-signed certificate covers: every local address, so nodes can use whichever reaches the server. */
function localNames(listenHost: string): string[] {
  const names = ['localhost', hostname(), '127.0.0.1', '::1'];
  if (listenHost && listenHost !== '0.0.0.0' && listenHost !== '::') names.push(listenHost);
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) if (!a.address.startsWith('fe80')) names.push(a.address);
  return names;
}

/** A new self-signed certificate for the control server, for every local name and address. */
export function newCertificate(listenHost: string): { certPem: string; keyPem: string } {
  return createSelfSigned('meshctl control server', localNames(listenHost));
}

export function loadOrCreateCertificate(dir: string, listenHost: string): { cert: string; key: string; created: boolean } {
  const f = stateFiles(dir);
  if (existsSync(f.cert) && existsSync(f.key)) return { cert: readFileSync(f.cert, 'utf8'), key: readFileSync(f.key, 'utf8'), created: false };
  const c = newCertificate(listenHost);
  writeFileAtomic(f.key, c.keyPem);
  writeFileAtomic(f.cert, c.certPem, 0o644);
  return { cert: c.certPem, key: c.keyPem, created: true };
}
