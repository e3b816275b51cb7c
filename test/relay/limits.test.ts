// The relay's caps on connections: connected clients (a new node key past the
// cap hears a Close frame, a connected key may still reconnect), and
// connections not yet verified per source and in time, so one host holding
// silent connections does not lock other sources out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { FrameType, frame } from '../../src/relay/frames.js';
import { client, collectFrames, rawHandshake, rawUpgrade, relay, until } from './harness.js';

type Frames = ReturnType<typeof collectFrames>;

function closed(s: Socket | TLSSocket): () => boolean {
  let done = s.destroyed;
  s.on('error', () => {});
  s.once('close', () => (done = true));
  return () => done;
}

/** A handshake from `localAddress` that the relay admits: it answers ServerInfo. */
async function admitted(port: number, priv: Buffer, localAddress = '127.0.0.1'): Promise<{ s: TLSSocket; got: Frames }> {
  const s = await rawHandshake(port, { priv, localAddress });
  s.on('error', () => {});
  const got = collectFrames(s);
  await until(() => got.length > 0, 5000, 'an answer to the handshake');
  assert.equal(got[0]!.type, FrameType.serverInfo, `answered ${got[0]!.type}: ${got[0]!.payload.toString('utf8')}`);
  return { s, got };
}

/** A TCP connection from `localAddress` that sends nothing (not even TLS); resolves once connected. */
async function silentTcp(port: number, localAddress: string): Promise<Socket> {
  const s = netConnect({ host: '127.0.0.1', port, localAddress });
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  return s;
}

test('past maxClients a new node key hears a Close frame (logged once); a connected key reconnects at the cap and relays', async () => {
  const R = await relay({ maxClients: 2 });
  const port = R.r.boundPort;
  const aPriv = generatePrivateKey();
  const open: (Socket | TLSSocket)[] = [];
  const b = client(R.url, { fingerprint: R.r.fingerprint });
  let a2: ReturnType<typeof client> | null = null;
  try {
    // A's first connection: admitted, then left idle (as a connection whose network went away would be)
    const a1 = await admitted(port, aPriv);
    open.push(a1.s);
    const a1Closed = closed(a1.s);
    await until(() => b.c.connected, 5000, 'B connected');
    assert.equal(R.r.clients.size, 2);

    for (let i = 0; i < 2; i++) {
      const s = await rawHandshake(port);
      open.push(s);
      const isClosed = closed(s);
      const got = collectFrames(s);
      await until(() => got.length > 0, 5000, 'an answer to a third node key');
      assert.equal(got[0]!.type, FrameType.close, `a third node key got frame ${got[0]!.type}, not Close`);
      assert.match(got[0]!.payload.toString('utf8'), /^relay full: 2 clients connected/);
      await until(isClosed, 3000, 'the refused connection closed');
    }
    assert.equal(R.r.stats.refused.full, 2);
    assert.equal(R.r.clients.size, 2);
    const lines = R.logs.filter((l) => l.includes('refusing new clients'));
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /2 are connected, the most this relay takes \(MAX_CLIENTS 2\)/);

    // A reconnects while its old connection is still open: it replaces it
    a2 = client(R.url, { fingerprint: R.r.fingerprint, priv: aPriv });
    await until(() => a2!.c.connected, 5000, 'A reconnected at the cap');
    await until(a1Closed, 3000, "A's old connection closed");
    assert.equal(R.r.clients.size, 2);
    assert.equal(R.r.stats.refused.full, 2);
    assert.ok(b.c.send(publicKeyOf(aPriv), Buffer.from('to a')));
    await until(() => a2!.got.length === 1, 3000, 'A got the packet on its new connection');
    assert.deepEqual(a2.got[0], { src: b.pub, pkt: Buffer.from('to a') });
  } finally {
    b.c.stop();
    a2?.c.stop();
    for (const s of open) s.destroy();
    await R.close();
  }
});

test('one source holding its cap of silent handshakes does not stop another source from connecting and relaying', async () => {
  // handshake slots would all be taken by 127.0.0.1 were it not capped per source
  const R = await relay({ maxHandshakes: 4, pending: { maxPerSource: 3 } });
  const port = R.r.boundPort;
  const open: (Socket | TLSSocket)[] = [];
  try {
    const silent: (() => boolean)[] = [];
    for (let i = 0; i < 4; i++) {
      try {
        const { s } = await rawUpgrade(port, { localAddress: '127.0.0.1' });
        open.push(s);
        silent.push(closed(s));
      } catch {
        // over the per-source cap: closed at the accept
      }
    }
    // 127.0.0.2: more clients than the per-source cap, one after another (admitted ones no longer count)
    const privs = Array.from({ length: 4 }, () => generatePrivateKey());
    const conns: { s: TLSSocket; got: Frames }[] = [];
    for (const p of privs) {
      const c = await admitted(port, p, '127.0.0.2');
      open.push(c.s);
      conns.push(c);
    }
    conns[0]!.s.write(frame(FrameType.sendPacket, publicKeyOf(privs[1]!), Buffer.from('from .2')));
    await until(() => conns[1]!.got.some((f) => f.type === FrameType.recvPacket), 3000, 'the packet relayed');
    const f = conns[1]!.got.find((g) => g.type === FrameType.recvPacket)!;
    assert.deepEqual(f.payload, Buffer.concat([publicKeyOf(privs[0]!), Buffer.from('from .2')]));
    assert.equal(silent.length, 3, 'the source got exactly its cap of connections');
    assert.equal(R.r.stats.pending.refusedOverSource, 1);
    // the silent ones were open all along: the other source got in beside them, not after them
    assert.ok(
      silent.every((c) => !c()),
      'a silent connection closed early',
    );
    assert.equal(R.r.stats.refused.busy, 0);
  } finally {
    for (const s of open) s.destroy();
    await R.close();
  }
});

test('connections that never upgrade are capped per source and cut at the deadline; other sources get in meanwhile', async () => {
  const R = await relay({ pending: { maxPerSource: 3, preUpgradeTimeoutMs: 1000 } });
  const port = R.r.boundPort;
  const open: (Socket | TLSSocket)[] = [];
  try {
    const held: (() => boolean)[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await silentTcp(port, '127.0.0.1');
      open.push(s);
      held.push(closed(s));
    }
    // the fourth from the same source (accepted after them: the listen queue keeps the order) is closed at once
    const fourth = await silentTcp(port, '127.0.0.1');
    open.push(fourth);
    await until(closed(fourth), 3000, 'the fourth closed');
    assert.equal(R.r.stats.pending.refusedOverSource, 1);
    assert.equal(R.logs.filter((l) => l.includes('refusing connections from 127.0.0.1')).length, 1);
    // another source is not held up
    const other = await admitted(port, generatePrivateKey(), '127.0.0.2');
    open.push(other.s);
    // the silent ones are cut at the deadline, and their source may connect again
    await until(() => held.every((c) => c()), 10_000, 'the silent connections cut');
    assert.equal(R.r.stats.pending.timedOut, 3);
    await until(() => R.r.stats.pending.connections === 0, 3000, 'nothing pending');
    const again = await admitted(port, generatePrivateKey(), '127.0.0.1');
    open.push(again.s);
    assert.equal(R.r.clients.size, 2);
  } finally {
    for (const s of open) s.destroy();
    await R.close();
  }
});

test('pending connections are capped in total across sources too', async () => {
  const R = await relay({ pending: { maxTotal: 2, maxPerSource: 10 } });
  const open: Socket[] = [];
  try {
    for (const from of ['127.0.0.1', '127.0.0.3']) open.push(await silentTcp(R.r.boundPort, from));
    const third = await silentTcp(R.r.boundPort, '127.0.0.2');
    open.push(third);
    await until(closed(third), 3000, 'the third closed');
    assert.equal(R.r.stats.pending.refusedOverTotal, 1);
    assert.equal(R.logs.filter((l) => l.includes('MAX_PENDING_CONNECTIONS')).length, 1);
  } finally {
    for (const s of open) s.destroy();
    await R.close();
  }
});

test('stopping the relay closes connections still in TLS instead of waiting for them', { timeout: 20_000 }, async () => {
  const R = await relay();
  const s = await silentTcp(R.r.boundPort, '127.0.0.1');
  const isClosed = closed(s);
  // without the relay closing it, close() would wait for node's TLS handshake timeout (120 s)
  await R.close();
  await until(isClosed, 3000, 'the connection closed');
});
