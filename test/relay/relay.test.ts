// The relay over real TLS on loopback: packets by key, PeerGone, refused
// handshakes, pinned certificates, region mesh, a slow client, fuzzed frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { RelayClient } from '../../src/relay/client.js';
import { FrameReader, FrameType, frame, MAX_FRAME } from '../../src/relay/frames.js';
import { RelayServer, type RelayServerOptions } from '../../src/relay/server.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';

async function relay(extra: Partial<RelayServerOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-relay-'));
  const r = new RelayServer({ host: '127.0.0.1', port: 0, stunPort: 0, region: 'test', stateDir: dir, ...extra });
  await r.start();
  return { r, url: `https://127.0.0.1:${r.boundPort}`, close: async () => (await r.stop(), rmSync(dir, { recursive: true, force: true })) };
}

function client(url: string, fingerprint: string, priv = generatePrivateKey()) {
  const got: { src: Buffer; pkt: Buffer }[] = [];
  const gone: Buffer[] = [];
  let waiters: (() => void)[] = [];
  const c = new RelayClient({
    url,
    fingerprint,
    nodePrivate: priv,
    onPacket: (src, pkt) => (got.push({ src: Buffer.from(src), pkt: Buffer.from(pkt) }), waiters.splice(0).forEach((w) => w())),
    onPeerGone: (k) => (gone.push(Buffer.from(k)), waiters.splice(0).forEach((w) => w())),
    onState: () => waiters.splice(0).forEach((w) => w()),
  });
  const until = async (pred: () => boolean, ms = 3000): Promise<void> => {
    const t0 = Date.now();
    while (!pred()) {
      if (Date.now() - t0 > ms) throw new Error('condition not met');
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
    waiters = [];
  };
  c.start();
  return { c, got, gone, until, pub: publicKeyOf(priv) };
}

test('packets travel by node key; an absent destination answers PeerGone; leaving is announced', async () => {
  const R = await relay();
  const a = client(R.url, R.r.fingerprint);
  const b = client(R.url, R.r.fingerprint);
  try {
    await a.until(() => a.c.connected);
    await b.until(() => b.c.connected);
    assert.ok(a.c.send(b.pub, Buffer.from('hello b')));
    await b.until(() => b.got.length === 1);
    assert.deepEqual(b.got[0], { src: a.pub, pkt: Buffer.from('hello b') });
    const nobody = publicKeyOf(generatePrivateKey());
    a.c.send(nobody, Buffer.from('x'));
    await a.until(() => a.gone.some((k) => k.equals(nobody)));
    b.c.stop();
    await a.until(() => a.gone.some((k) => k.equals(b.pub)), 3000);
    assert.equal(R.r.stats.packetsRelayed, 1);
    assert.equal(R.r.stats.dropped.noSuchPeer, 1);
  } finally {
    a.c.stop();
    b.c.stop();
    await R.close();
  }
});

test('a wrong pinned fingerprint and a forged ClientInfo are refused', async () => {
  const R = await relay();
  try {
    const bad = client(R.url, 'ab'.repeat(32));
    await bad.until(() => /fingerprint/.test(bad.c.lastError ?? ''), 10_000);
    assert.equal(bad.c.connected, false);
    assert.match(bad.c.lastError ?? '', /fingerprint/);
    bad.c.stop();
    // raw: claim one key, seal with garbage
    const s = connect({ host: '127.0.0.1', port: R.r.boundPort, rejectUnauthorized: false });
    await new Promise((r) => s.once('secureConnect', r));
    s.write('GET /relay HTTP/1.1\r\nHost: x\r\nUpgrade: meshctl-relay\r\nConnection: Upgrade\r\n\r\n');
    s.write(frame(FrameType.clientInfo, publicKeyOf(generatePrivateKey()), randomBytes(80)));
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    await new Promise((r) => s.once('close', r));
    assert.match(text, /not sealed by the key it names/);
    assert.equal(R.r.stats.refused.handshake, 1);
    assert.equal(R.r.clients.size, 0);
  } finally {
    await R.close();
  }
});

test('two relays of a region mesh: a node on one reaches a node on the other', async () => {
  const meshKey = randomBytes(32).toString('hex');
  const R1 = await relay({ meshKey });
  const R2 = await relay({ meshKey, meshWith: [{ url: R1.url, fingerprint: R1.r.fingerprint }] });
  // R1 learns of R2 after R2 is up; wire the other direction by restarting R1's mesh is unnecessary: give R1 a mesh of its own
  const R1b = await relay({ meshKey, meshWith: [{ url: R2.url, fingerprint: R2.r.fingerprint }] });
  const a = client(R1b.url, R1b.r.fingerprint);
  const b = client(R2.url, R2.r.fingerprint);
  try {
    await a.until(() => a.c.connected);
    await b.until(() => b.c.connected);
    // presence propagates over the mesh links in its own time: send until a packet crosses (with a deadline)
    for (const deadline = Date.now() + 15_000; b.got.length === 0 && Date.now() < deadline; ) {
      a.c.send(b.pub, Buffer.from('across'));
      await b.until(() => b.got.length > 0, 300).catch(() => undefined);
    }
    assert.ok(b.got.length > 0, 'a packet crossed the mesh');
    assert.deepEqual(b.got[0]!.src, a.pub);
    assert.equal(b.got[0]!.pkt.toString(), 'across');
    await b.until(() => R1b.r.stats.packetsForwarded === b.got.length, 3000);
    assert.equal(R1b.r.stats.packetsForwarded, b.got.length, 'every packet forwarded across the mesh arrived');
  } finally {
    a.c.stop();
    b.c.stop();
    await R1b.close();
    await R2.close();
    await R1.close();
  }
});

test('fuzz: random frames after the handshake are dropped; the relay keeps serving', async () => {
  const R = await relay();
  const a = client(R.url, R.r.fingerprint);
  const b = client(R.url, R.r.fingerprint);
  try {
    await a.until(() => a.c.connected);
    await b.until(() => b.c.connected);
    for (let i = 0; i < 3000; i++) {
      const type = i % 17;
      if (type === FrameType.sendPacket || type === FrameType.ping) continue;
      a.c.sendFrame(frame(type, randomBytes(i % 100)));
    }
    a.c.send(b.pub, Buffer.from('still here'));
    await b.until(() => b.got.some((g) => g.pkt.toString() === 'still here'));
    assert.ok(R.r.stats.dropped.malformed > 1000);
    // an oversized frame header closes only that connection
    const reader = new FrameReader();
    assert.throws(() => reader.push(Buffer.from([4, 0xff, 0xff, 0xff, 0xff])), /larger than/);
    assert.ok(MAX_FRAME > 65536);
  } finally {
    a.c.stop();
    b.c.stop();
    await R.close();
  }
});

test('--verify-clients: only nodes the control server knows get in', async () => {
  const { ControlServer } = await import('../../src/control/server.js');
  const { admin } = await import('../../src/control/admin-client.js');
  const { ControlClient } = await import('../../src/daemon/control-client.js');
  const { keyToText } = await import('../../src/crypto/keys.js');
  const cdir = mkdtempSync(join(tmpdir(), 'meshctl-ctl-'));
  const ctl = new ControlServer({ host: '127.0.0.1', port: 0, stateDir: cdir });
  await ctl.start();
  const caFile = join(cdir, 'ca.pem');
  (await import('node:fs')).writeFileSync(caFile, ctl.certPem);
  const R = await relay({ verifyClientsUrl: `https://127.0.0.1:${ctl.boundPort}`, verifyClientsCa: caFile });
  const member = generatePrivateKey();
  try {
    const { key } = await admin.createAuthKey(cdir, { reusable: false, ephemeral: false, expiryMs: null });
    await new ControlClient(`https://127.0.0.1:${ctl.boundPort}`, ctl.certPem, member).call(
      'register',
      { authKey: key, hostname: 'm', os: 'linux', version: 't', discoKey: keyToText(publicKeyOf(generatePrivateKey())), endpoints: [] },
      5000,
    );
    const ok = client(R.url, R.r.fingerprint, member);
    await ok.until(() => ok.c.connected);
    const stranger = client(R.url, R.r.fingerprint);
    await stranger.until(() => /not known to the control server/.test(stranger.c.lastError ?? ''), 10_000);
    assert.equal(stranger.c.connected, false);
    assert.match(stranger.c.lastError ?? '', /not known to the control server/);
    assert.equal(R.r.stats.refused.unauthorized >= 1, true);
    ok.c.stop();
    stranger.c.stop();
  } finally {
    await R.close();
    await ctl.stop();
    rmSync(cdir, { recursive: true, force: true });
  }
});

test('per-client limits: a rate-limited sender is cut, a stalled receiver only loses its own packets', async () => {
  const R = await relay({ clientRateBytesPerSec: 20_000 });
  const a = client(R.url, R.r.fingerprint);
  const b = client(R.url, R.r.fingerprint);
  try {
    await a.until(() => a.c.connected);
    await b.until(() => b.c.connected);
    for (let i = 0; i < 200; i++) a.c.send(b.pub, Buffer.alloc(1000, i));
    // the bucket decides each frame as it arrives: wait until all 200 are either dropped or delivered
    await b.until(() => R.r.stats.dropped.rateLimited + b.got.length >= 200, 15_000);
    assert.ok(R.r.stats.dropped.rateLimited >= 150, `rate limited: ${R.r.stats.dropped.rateLimited}`);
    assert.ok(b.got.length >= 15 && b.got.length <= 50, `one second of burst got through: ${b.got.length}`);
  } finally {
    a.c.stop();
    b.c.stop();
    await R.close();
  }
  const R2 = await relay();
  const sender = client(R2.url, R2.r.fingerprint);
  const slow = client(R2.url, R2.r.fingerprint);
  const fast = client(R2.url, R2.r.fingerprint);
  try {
    await sender.until(() => sender.c.connected && slow.c.connected && fast.c.connected);
    // the slow client stops reading: the relay holds the sender for a while, then calls the client slow, fills its queue and drops
    (slow.c as unknown as { sock: { pause(): void } }).sock.pause();
    await sender.until(() => {
      for (let i = 0; i < 1000; i++) sender.c.send(slow.pub, Buffer.alloc(1200, 1));
      return R2.r.stats.dropped.queueFull > 0;
    }, 15_000);
    // the sender's own send queue is bounded: full of packets for the slow client, it refuses until the relay reads on
    await sender.until(() => sender.c.send(fast.pub, Buffer.from('still flowing')), 5000);
    await fast.until(() => fast.got.some((g) => g.pkt.toString() === 'still flowing'), 3000);
    assert.ok(R2.r.stats.dropped.queueFull > 0, 'the stalled client’s queue overflowed into drops');
  } finally {
    sender.c.stop();
    slow.c.stop();
    fast.c.stop();
    await R2.close();
  }
});
