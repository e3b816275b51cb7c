// The control listener's connection limits: a connection that completes no
// request within the idle allowance (TLS handshake included) is closed, a map
// stream (quiet by design) is not, and connections over the total or
// per-source cap are refused while the earlier ones keep working.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientRequest } from 'node:http';
import { request } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { stateFiles } from '../../src/control/state-dir.js';
import { discoKey, harness, Node, registerBody, until, type Harness } from './helpers.js';

const P = '/meshctl/v1';

interface Conn {
  socket: Socket | TLSSocket;
  closed: () => boolean;
  secured: Promise<boolean>;
}

function track(socket: Socket | TLSSocket, tls: boolean): Conn {
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  const secured = tls
    ? new Promise<boolean>((r) => {
        socket.once('secureConnect', () => r(true));
        socket.once('close', () => r(false));
      })
    : Promise.resolve(true);
  return { socket, closed: () => closed, secured };
}

const rawTcp = (h: Harness): Conn => track(netConnect(h.server.boundPort, '127.0.0.1'), false);
const rawTls = (h: Harness, localAddress = '127.0.0.1'): Conn =>
  track(tlsConnect({ socket: netConnect({ host: '127.0.0.1', port: h.server.boundPort, localAddress }), ca: h.server.certPem, servername: 'localhost' }), true);

/** One HTTP/1.1 request over an open TLS connection; resolves with the status line. */
function ask(c: Conn, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    c.socket.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.includes('\r\n')) resolve(buf.slice(0, buf.indexOf('\r\n')));
    });
    c.socket.once('close', () => reject(new Error(`closed before an answer: ${JSON.stringify(buf)}`)));
    c.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

test('a TCP or TLS connection that sends no request is closed after the idle allowance; a map stream is not', async () => {
  const h = await harness({ limits: { connectionIdleMs: 400 } });
  const conns: Conn[] = [];
  let req: ClientRequest | undefined;
  try {
    const authKey = await h.authKey();
    const n = new Node(h.server.publicKey!);
    const w = new Node(h.server.publicKey!);
    for (const [x, name] of [
      [n, 'quiet'],
      [w, 'other'],
    ] as const)
      assert.equal((await h.post(`${P}/register`, x.seal('register', registerBody(authKey, name)))).status, 200);
    // a map stream, read by hand
    let lines = '';
    let streamClosed = false;
    req = request(`${h.url}${P}/map`, { method: 'POST', ca: h.server.certPem, agent: false }, (res) => {
      res.on('data', (c: Buffer) => (lines += c.toString('utf8')));
      res.on('close', () => (streamClosed = true));
    });
    req.on('error', () => {});
    req.end(JSON.stringify(n.seal('map', { endpoints: [], discoKey: discoKey() })));
    await until(() => lines.includes('"type":"map"'), 5000, 'first map');

    const tcp = rawTcp(h);
    const tls = rawTls(h);
    conns.push(tcp, tls);
    assert.equal(await tls.secured, true, 'the handshake itself is served');
    await until(() => tcp.closed() && tls.closed(), 10_000, 'idle connections closed');
    assert.ok(h.server.connectionStats().closedIdle >= 2);
    // the stream has been open longer than the allowance, and still carries changes
    assert.equal(streamClosed, false, 'the map stream was not cut');
    assert.equal((await h.post(`${P}/endpoints`, w.seal('endpoints', { endpoints: ['192.0.2.9:9'] }))).status, 200);
    await until(() => lines.includes('192.0.2.9:9'), 5000, 'a change on the old stream');

    // the admin socket has the same allowance
    const admin = track(netConnect(stateFiles(h.dir).adminSocket), false);
    conns.push(admin);
    await until(() => admin.closed(), 10_000, 'idle admin connection closed');
  } finally {
    req?.destroy();
    for (const c of conns) c.socket.destroy();
    await h.close();
  }
});

test('connections over the total cap are refused while the earlier ones work', async () => {
  const h = await harness({ limits: { maxConnections: 3, connectionIdleMs: 60_000 } });
  const conns: Conn[] = [];
  try {
    for (let i = 0; i < 3; i++) conns.push(rawTls(h));
    for (const c of conns) assert.equal(await c.secured, true);
    const over = rawTls(h);
    conns.push(over);
    assert.equal(await over.secured, false, 'the fourth connection is closed before its handshake');
    await until(() => h.server.connectionStats().refusedOverTotal >= 1, 5000, 'counted');
    assert.match(await ask(conns[0]!, '/healthz'), /^HTTP\/1\.1 200/);
    assert.match(await ask(conns[2]!, `${P}/key`), /^HTTP\/1\.1 200/);
  } finally {
    for (const c of conns) c.socket.destroy();
    await h.close();
  }
});

test('connections over the per-source cap are refused; another source still gets in', async () => {
  const h = await harness({ limits: { maxConnectionsPerSource: 2, connectionIdleMs: 60_000 } });
  const conns: Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) conns.push(rawTls(h));
    for (const c of conns) assert.equal(await c.secured, true);
    const over = rawTls(h);
    conns.push(over);
    assert.equal(await over.secured, false, 'a third connection from 127.0.0.1 is refused');
    const elsewhere = rawTls(h, '127.0.0.2');
    conns.push(elsewhere);
    assert.equal(await elsewhere.secured, true, 'a connection from 127.0.0.2 is accepted');
    assert.match(await ask(elsewhere, '/healthz'), /^HTTP\/1\.1 200/);
    assert.match(await ask(conns[1]!, '/healthz'), /^HTTP\/1\.1 200/);
    // a slot freed is a slot again
    conns[0]!.socket.destroy();
    await until(() => h.server.connectionStats().open === 2, 5000, 'the closed connection is counted out');
    const again = rawTls(h);
    conns.push(again);
    assert.equal(await again.secured, true);
  } finally {
    for (const c of conns) c.socket.destroy();
    await h.close();
  }
});
