// The relay's identity: its X25519 key (clients seal their ClientInfo to it)
// and its TLS certificate, self-signed and kept in the state dir unless the
// operator brings one. Nodes pin the certificate's fingerprint, which the
// control server hands them in the relay map.
import { existsSync, mkdirSync, readFileSync } from '../util/cjs.js';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { certFingerprint, createSelfSigned } from '../crypto/selfsigned.js';
import { generatePrivateKey, publicKeyOf } from '../crypto/x25519.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export async function loadRelayIdentity(dir: string, listenHost: string, tlsCert?: string, tlsKey?: string) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyFile = join(dir, 'relay.key');
  let privateKey: Buffer;
  if (existsSync(keyFile)) privateKey = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64');
  else {
    privateKey = generatePrivateKey();
    writeFileAtomic(keyFile, privateKey.toString('base64') + '\n');
  }
  let cert: string;
  let key: string;
  if (tlsCert && tlsKey) {
    cert = readFileSync(tlsCert, 'utf8');
    key = readFileSync(tlsKey, 'utf8');
  } else {
    const cf = join(dir, 'tls', 'cert.pem');
    const kf = join(dir, 'tls', 'key.pem');
    if (existsSync(cf) && existsSync(kf)) {
      cert = readFileSync(cf, 'utf8');
      key = readFileSync(kf, 'utf8');
    } else {
      const names = ['localhost', hostname(), '127.0.0.1', '::1'];
      if (listenHost && listenHost !== '0.0.0.0' && listenHost !== '::') names.push(listenHost);
      for (const a of Object.values(networkInterfaces()).flat()) if (a && !a.address.startsWith('fe80')) names.push(a.address);
      const c = createSelfSigned('meshctl relay', names);
      writeFileAtomic(kf, c.keyPem);
      writeFileAtomic(cf, c.certPem, 0o644);
      cert = c.certPem;
      key = c.keyPem;
    }
  }
  return { privateKey, publicKey: publicKeyOf(privateKey), cert, key, fingerprint: certFingerprint(cert) };
}
