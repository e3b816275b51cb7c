// The daemon's control client trusting a server by its public key (a join
// string's pin), over real HTTPS on loopback: the right key is accepted whatever
// name or CA the certificate has, a wrong one is refused before any request is
// sent, in one line naming both pins and the fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ControlClient } from '../../src/daemon/control-client.js';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';
import { certPin } from '../../src/crypto/spki-pin.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { PATHS } from '../../src/control/protocol.js';
import { testKey } from './node-view.js';

async function server(): Promise<{ url: string; certPem: string; requests: string[]; close(): Promise<void> }> {
  // a certificate for another name entirely: with a pin, the name does not matter
  const cert = createSelfSigned('elsewhere.example', ['elsewhere.example']);
  const requests: string[] = [];
  const controlKey = keyToText(publicKeyOf(generatePrivateKey()));
  const s = createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    if (req.url === PATHS.key) return void res.end(JSON.stringify({ publicKey: controlKey }));
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.flushHeaders();
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(s.address() as AddressInfo).port}`,
    certPem: cert.certPem,
    requests,
    close: async () => {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    },
  };
}

test('a pinned public key is the whole trust: the right one connects, a wrong one is refused before a byte of request is sent', async () => {
  const srv = await server();
  try {
    const pin = certPin(srv.certPem);
    const ok = new ControlClient(srv.url, null, generatePrivateKey(), pin);
    const stream = await ok.openMap({ endpoints: [], discoKey: testKey() }, () => {}, 30_000);
    stream.close();
    assert.deepEqual(srv.requests, [`GET ${PATHS.key}`, `POST ${PATHS.map}`]);

    // without the pin the same server is not trusted (self-signed, another name)
    await assert.rejects(
      new ControlClient(srv.url, null, generatePrivateKey()).openMap({}, () => {}, 30_000),
      /self-signed and not trusted/,
    );

    const wrong = certPin(createSelfSigned('other', ['127.0.0.1']).certPem);
    srv.requests.length = 0;
    const bad = new ControlClient(srv.url, null, generatePrivateKey(), wrong);
    await assert.rejects(
      bad.openMap({}, () => {}, 30_000),
      (err: Error) => {
        assert.equal(
          err.message,
          `cannot reach control server ${srv.url}: its public key is not the pinned one: expected ${wrong}, got ${pin}; ` +
            'if the server got a new key, get a new join string from `meshctl control authkey create --join`, else the address reaches another server',
        );
        return true;
      },
    );
    assert.deepEqual(srv.requests, [], 'no request reached a server that failed the pin');
  } finally {
    await srv.close();
  }
});
