// The control client's kept connections, over real HTTPS on loopback: a node's
// requests in a burst (the key, endpoint updates, the map stream) share one TLS
// handshake; a request on a kept connection that the server closes under it is
// sent again on a new one; an idle kept connection is let go within seconds;
// after a network change the kept connections are dropped, so the next request
// does not wait on one that leads nowhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { CONTROL_IDLE_CONNECTION_MS, ControlClient } from '../../src/daemon/control-client.js';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { PATHS } from '../../src/control/protocol.js';
import { testKey } from './node-view.js';

interface Fake {
  url: string;
  certPem: string;
  /** TLS handshakes the server completed */
  handshakes: () => number;
  /** connections the server saw close */
  closed: () => number;
  requests: string[];
  /** the server cuts the connection instead of answering the Nth request on one connection (0: never) */
  cutNth: { n: number };
  /** the server never answers the Nth request on one connection, as through a mapping a NAT forgot (0: never) */
  holdNth: { n: number };
  close(): Promise<void>;
}

async function fake(): Promise<Fake> {
  const cert = createSelfSigned('127.0.0.1', ['127.0.0.1']);
  const controlKey = keyToText(publicKeyOf(generatePrivateKey()));
  const requests: string[] = [];
  const perSocket = new WeakMap<Socket, number>();
  const cutNth = { n: 0 };
  const holdNth = { n: 0 };
  let handshakes = 0;
  let closed = 0;
  const s = createServer({ key: cert.keyPem, cert: cert.certPem, keepAliveTimeout: 60_000 }, (req, res) => {
    const k = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, k);
    if (k === cutNth.n) return void req.socket.destroy();
    if (k === holdNth.n) return;
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    if (req.url === PATHS.key) return void res.end(JSON.stringify({ publicKey: controlKey }));
    if (req.url === PATHS.map) {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      return void res.flushHeaders();
    }
    res.end(JSON.stringify({ ok: true }));
  });
  s.on('secureConnection', (sock: Socket) => {
    handshakes++;
    sock.once('close', () => closed++);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(s.address() as AddressInfo).port}`,
    certPem: cert.certPem,
    handshakes: () => handshakes,
    closed: () => closed,
    requests,
    cutNth,
    holdNth,
    close: async () => {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    },
  };
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a burst of requests shares one TLS handshake, the map stream takes the kept connection, and an idle one is let go', async () => {
  const srv = await fake();
  try {
    const c = new ControlClient(srv.url, srv.certPem, generatePrivateKey());
    for (let i = 0; i < 3; i++) await c.call('endpoints', { endpoints: [`192.0.2.1:${4000 + i}`], homeRelay: null }, 10_000);
    assert.deepEqual(srv.requests, [`GET ${PATHS.key}`, `POST ${PATHS.endpoints}`, `POST ${PATHS.endpoints}`, `POST ${PATHS.endpoints}`]);
    assert.equal(srv.handshakes(), 1, 'the key and three endpoint updates went over one connection');

    // the stream takes the kept connection and keeps it to itself: a request while it runs makes a new one
    const stream = await c.openMap({ endpoints: [], discoKey: testKey() }, () => {}, 30_000);
    assert.equal(srv.handshakes(), 1, 'the map stream went over the kept connection');
    await c.call('endpoints', { endpoints: ['192.0.2.1:5000'], homeRelay: null }, 10_000);
    assert.equal(srv.handshakes(), 2, 'a request beside the stream has a connection of its own');
    stream.close();
    // the stream's connection ends with it; the other is let go once idle (the server here keeps it for 60 s)
    await until(() => srv.closed() === 2, CONTROL_IDLE_CONNECTION_MS + 5000, 'both connections closed');
  } finally {
    await srv.close();
  }
});

test('a request on a kept connection the server closes under it is sent again on a new connection', async () => {
  const srv = await fake();
  try {
    const c = new ControlClient(srv.url, srv.certPem, generatePrivateKey());
    await c.call('endpoints', { endpoints: ['192.0.2.1:4000'], homeRelay: null }, 10_000);
    // the next request on that connection (its third: key, endpoints, this) is cut without an answer
    srv.cutNth.n = 3;
    await c.call('endpoints', { endpoints: ['192.0.2.1:4001'], homeRelay: null }, 10_000);
    assert.deepEqual(srv.requests, [`GET ${PATHS.key}`, `POST ${PATHS.endpoints}`, `POST ${PATHS.endpoints}`]);
    assert.equal(srv.handshakes(), 2, 'the resent request went over a new connection');
  } finally {
    await srv.close();
  }
});

test('after a network change the kept connections are dropped: the next request goes out on a new one at once', async () => {
  const srv = await fake();
  try {
    const c = new ControlClient(srv.url, srv.certPem, generatePrivateKey());
    await c.call('endpoints', { endpoints: ['192.0.2.1:4000'], homeRelay: null }, 10_000);
    // the kept connection now leads nowhere: its next request (its third) is never answered
    srv.holdNth.n = 3;
    assert.equal(c.dropKeptConnections(), 1, 'the one idle kept connection was closed');
    await c.call('endpoints', { endpoints: ['198.51.100.7:4001'], homeRelay: null }, 3000);
    assert.equal(srv.handshakes(), 2, 'the request went over a new connection');
    assert.equal(srv.requests.at(-1), `POST ${PATHS.endpoints}`);
  } finally {
    await srv.close();
  }
});
