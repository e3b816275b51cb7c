// Registers N extra nodes with a control server and keeps their map streams
// open, so a real daemon sees N online peers (the bench's 100-peer RSS figure).
// usage: node fake-peers.js URL CA_FILE AUTHKEY N
import { readFileSync } from 'node:fs';
import { ControlClient } from '../src/daemon/control-client.js';
import { keyToText } from '../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../src/crypto/x25519.js';

const [url, caFile, authKey, n] = process.argv.slice(2);
const ca = readFileSync(caFile!, 'utf8');
for (let i = 0; i < Number(n); i++) {
  const c = new ControlClient(url!, ca, generatePrivateKey());
  const disco = keyToText(publicKeyOf(generatePrivateKey()));
  await c.call(
    'register',
    { authKey, hostname: `fake${i}`, os: 'linux', version: 'bench', discoKey: disco, endpoints: [`10.99.${i >> 8}.${i & 255}:41641`] },
    10_000,
  );
  await c.openMap({ endpoints: [`10.99.${i >> 8}.${i & 255}:41641`], discoKey: disco }, () => {}, 600_000);
}
process.stdout.write('ready\n');
setInterval(() => {}, 1 << 30);
