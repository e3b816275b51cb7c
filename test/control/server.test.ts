// The control server over real HTTPS on loopback, driven by the daemon's own
// control client: registration, the pushed map, replays, ephemeral nodes,
// expiry and the admin socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { createServer as createTlsServer } from 'node:tls';
import { createServer as createNetServer } from 'node:net';
import { certFingerprint, createSelfSigned } from '../../src/crypto/selfsigned.js';
import { admin } from '../../src/control/admin-client.js';
import type { MapLine, NetworkMap, RegisterResult, RelayRegion } from '../../src/netmap/types.js';
import { ControlServer } from '../../src/control/server.js';
import { stateFiles } from '../../src/control/state-dir.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { ControlClient } from '../../src/daemon/control-client.js';
import type { ApiError } from '../../src/localapi/types.js';

interface Harness {
  dir: string;
  server: ControlServer;
  url: string;
  client(priv?: Buffer): ControlClient;
  close(): Promise<void>;
}

async function harness(opts: { ephemeralGraceMs?: number; keyExpiryMs?: number; relays?: RelayRegion[] } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-control-'));
  const server = new ControlServer({ host: '127.0.0.1', port: 0, stateDir: dir, ...opts });
  await server.start();
  const url = `https://127.0.0.1:${server.boundPort}`;
  return {
    dir,
    server,
    url,
    client: (priv = generatePrivateKey()) => new ControlClient(url, server.certPem, priv),
    close: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const reg = (c: ControlClient, authKey: string | undefined, hostname: string) =>
  c.call<RegisterResult>(
    'register',
    { authKey, hostname, os: 'linux', version: 't', discoKey: keyToText(publicKeyOf(generatePrivateKey())), endpoints: [] },
    5000,
  );

function follow(c: ControlClient) {
  const maps: NetworkMap[] = [];
  let waiters: (() => void)[] = [];
  const stream = c.openMap(
    { endpoints: ['127.0.0.1:1'], discoKey: keyToText(publicKeyOf(generatePrivateKey())) },
    (l: MapLine) => {
      if (l.type === 'map') maps.push(l.map);
      for (const w of waiters.splice(0)) w();
    },
    30_000,
  );
  // a deadline for a loaded machine, not a latency limit: how long it took is returned for the log
  const until = async (pred: (m: NetworkMap) => boolean, ms = 15_000): Promise<number> => {
    const t0 = Date.now();
    while (!maps.length || !pred(maps[maps.length - 1]!)) {
      if (Date.now() - t0 > ms) throw new Error(`map condition not met within ${ms} ms: ${JSON.stringify(maps.at(-1)?.peers.map((p) => [p.name, p.online]))}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return Date.now() - t0;
  };
  return { maps, stream, until, stop: async () => (await stream).close(), reset: () => (waiters = []) };
}

test('state dir: 0600 key and database, certificate reused across restarts', async () => {
  const h = await harness();
  const f = stateFiles(h.dir);
  const cert = h.server.certPem;
  const pub = h.server.publicKey;
  assert.equal(statSync(f.controlKey).mode & 0o777, 0o600);
  assert.equal(statSync(f.key).mode & 0o777, 0o600);
  assert.equal(statSync(f.adminSocket).mode & 0o777, 0o600);
  await h.server.stop();
  const again = new ControlServer({ host: '127.0.0.1', port: 0, stateDir: h.dir });
  await again.start();
  assert.equal(again.certPem, cert);
  assert.deepEqual(again.publicKey, pub);
  await again.stop();
  rmSync(h.dir, { recursive: true, force: true });
});

test('join, the pushed map, delete and logout', async () => {
  const h = await harness();
  try {
    const { key } = await admin.createAuthKey(h.dir, { reusable: true, ephemeral: false, expiryMs: null });
    const a = h.client();
    const ra = await reg(a, key, 'alpha');
    assert.equal(ra.node.name, 'alpha');
    assert.equal(ra.ipv4Prefix, '100.64.0.0/10');
    const fa = follow(a);
    await fa.until((m) => m.self.name === 'alpha' && m.peers.length === 0);
    const b = h.client();
    await reg(b, key, 'beta');
    const fb = follow(b);
    const joinMs = await fa.until((m) => m.peers.some((p) => p.name === 'beta' && p.online));
    process.stderr.write(`join reached alpha in ${joinMs} ms\n`);
    const mb = fb.maps.at(-1) ?? (await fb.until((m) => m.peers.length === 1), fb.maps.at(-1)!);
    const alphaSeen = mb.peers.find((p) => p.name === 'alpha')!;
    assert.deepEqual(alphaSeen.endpoints, ['127.0.0.1:1']);
    assert.equal(alphaSeen.allowedIps.length, 2);
    assert.ok(!JSON.stringify(mb).includes(key.split('-')[2]!), 'no auth key material in maps');
    await fb.stop();
    await fa.until((m) => m.peers.some((p) => p.name === 'beta' && !p.online));
    const list = await admin.listNodes(h.dir);
    assert.deepEqual(
      list.map((n) => [n.name, n.online]),
      [
        ['alpha', true],
        ['beta', false],
      ],
    );
    await admin.deleteNode(h.dir, 'beta');
    const delMs = await fa.until((m) => m.peers.length === 0);
    process.stderr.write(`delete reached alpha in ${delMs} ms\n`);
    await assert.rejects(reg(b, undefined, 'beta'), (e: ApiError) => e.code === 'AUTH' && /not registered/.test(e.message));
    await a.call('logout', {}, 5000);
    assert.deepEqual(
      (await admin.listNodes(h.dir)).map((n) => n.name),
      [],
    );
    await fa.stop();
  } finally {
    await h.close();
  }
});

test('a captured request cannot be replayed, and a box from another key is refused', async () => {
  const h = await harness();
  try {
    const { key } = await admin.createAuthKey(h.dir, { reusable: true, ephemeral: false, expiryMs: null });
    const c = h.client();
    await reg(c, key, 'x');
    // seal one request by hand, send it twice
    const sealed = await (c as unknown as { sealed(op: string, body: object, t: number): Promise<object> }).sealed('endpoints', { endpoints: [] }, 5000);
    const post = (body: object) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${h.url}/meshctl/v1/endpoints`, { method: 'POST', ca: h.server.certPem }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
    assert.equal(await post(sealed), 200);
    assert.equal(await post(sealed), 401, 'replay refused');
    const forged = { ...(sealed as { nodeKey: string; box: string }), nodeKey: keyToText(publicKeyOf(generatePrivateKey())) };
    assert.equal(await post(forged), 401, 'box under another node key refused');
    assert.equal(await post({ nodeKey: 'x', box: 'y' }), 400);
  } finally {
    await h.close();
  }
});

test('ephemeral nodes disappear after going offline; expired nodes drop out and must re-authenticate', async () => {
  const h = await harness({ ephemeralGraceMs: 200 });
  try {
    const eph = await admin.createAuthKey(h.dir, { reusable: true, ephemeral: true, expiryMs: null });
    const normal = await admin.createAuthKey(h.dir, { reusable: true, ephemeral: false, expiryMs: null });
    const watcher = h.client();
    await reg(watcher, normal.key, 'watcher');
    const fw = follow(watcher);
    const e = h.client();
    await reg(e, eph.key, 'temp');
    const fe = follow(e);
    await fw.until((m) => m.peers.some((p) => p.name === 'temp' && p.online && p.ephemeral));
    await fe.stop();
    await fw.until((m) => !m.peers.some((p) => p.name === 'temp'), 2000);

    const other = h.client();
    await reg(other, normal.key, 'other');
    await fw.until((m) => m.peers.some((p) => p.name === 'other'));
    await admin.expireNode(h.dir, 'other');
    await fw.until((m) => !m.peers.some((p) => p.name === 'other'));
    await assert.rejects(reg(other, undefined, 'other'), (err: ApiError) => err.code === 'AUTH' && /expired/.test(err.message));
    const back = await reg(other, normal.key, 'other');
    assert.equal(back.node.name, 'other');
    await fw.stop();
  } finally {
    await h.close();
  }
});

test('a relay that starts after the control server is in the map, pinned', async () => {
  // the relay's port is held from the start (never found free, closed and bound again, which another
  // process could take in between): until the relay is "up", every connection is dropped unanswered
  let relayUp = false;
  const cert = createSelfSigned('late relay', ['127.0.0.1']);
  const relay = createTlsServer({ cert: cert.certPem, key: cert.keyPem }, (s) => s.destroy());
  const front = createNetServer((sock) => (relayUp ? relay.emit('connection', sock) : sock.destroy()));
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
  const port = (front.address() as { port: number }).port;
  // start() has probed the relay once, and found nothing
  const h = await harness({ relays: [{ code: 'late', url: `https://127.0.0.1:${port}`, stunPort: 3478 }] });
  try {
    relayUp = true;
    const upAt = Date.now();
    const { key } = await admin.createAuthKey(h.dir, { reusable: true, ephemeral: false, expiryMs: null });
    const a = h.client();
    await reg(a, key, 'alpha');
    const fa = follow(a);
    // re-probes back off from 250 ms; how soon it lands is a figure for the log, not a pass/fail limit on a loaded machine
    await fa.until((m) => m.relays[0]?.certFingerprint === certFingerprint(cert.certPem), 15_000);
    process.stderr.write(`late relay pinned ${Date.now() - upAt} ms after it came up\n`);
    await fa.stop();
  } finally {
    front.close();
    await h.close();
  }
});
