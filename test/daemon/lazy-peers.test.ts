// Lazy engine peers: two daemons' engines (EngineHost) in this process over
// real loopback UDP, each with an in-memory TUN. A holds a map of 2,000
// synthetic peers and B; B holds A and is lazy too (eager limit 0). Nothing is
// configured in the engine until a packet moves: a packet from A's TUN to B's
// address makes A's engine peer for B, B makes its peer for A from the
// handshake initiation, the handshake completes and the packet reaches B's
// TUN. The other 2,000 peers never get one, are never probed, and status-like
// reads of them answer from the table. After the idle time the engine peer
// goes, and the next packet makes it again.
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineHost } from '../../src/daemon/engine-host.js';
import type { TunDevice } from '../../src/tun/device.js';
import type { NetworkMap, NodeView } from '../../src/netmap/types.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { ipv4Packet } from '../helpers/memnet.js';
import { testNodeView } from './node-view.js';

const SYNTHETIC_PEERS = 2000;

/** A TUN in memory: `inject` is a read from the kernel, `written` what the engine wrote to it. */
function memTun(): TunDevice & { inject(p: Buffer): void; written: Buffer[] } {
  let handler: ((pkts: Buffer[]) => void) | null = null;
  const written: Buffer[] = [];
  return {
    name: 'memtun',
    mtu: 1280,
    offload: false,
    onPackets: (h) => void (handler = h),
    write: (p) => (written.push(Buffer.from(p)), true),
    stats: {} as TunDevice['stats'],
    close: async () => {},
    inject: (p) => handler?.([p]),
    written,
  };
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function mapOf(self: NodeView, peers: NodeView[]): NetworkMap {
  return { self, peers, ipv4Prefix: '100.64.0.0/10', ipv6Prefix: 'fd7a:115c:a1e0::/48', relays: [] };
}

/** node i of the synthetic crowd: addresses of its own in 100.65/16, an endpoint nothing listens on, random keys (no X25519 work) */
function synthetic(i: number): NodeView {
  const v4 = `100.65.${i >> 8}.${i & 255}`;
  const v6 = `fd7a:115c:a1e0::1:${i.toString(16)}`;
  return {
    ...template,
    id: 1000 + i,
    name: `s${i}`,
    nodeKey: randomBytes(32).toString('base64'),
    discoKey: randomBytes(32).toString('base64'),
    addresses: [v4, v6],
    allowedIps: [`${v4}/32`, `${v6}/128`],
    endpoints: ['127.0.0.1:9'],
  };
}
const template = testNodeView(999);

test('lazy peers: only talking peers get engine peers; a packet to an idle peer makes it and completes a handshake', { timeout: 120_000 }, async () => {
  const keys = { a: generatePrivateKey(), b: generatePrivateKey(), da: generatePrivateKey(), db: generatePrivateKey() };
  const tuns = { a: memTun(), b: memTun() };
  const logs: string[] = [];
  const start = (node: Buffer, disco: Buffer, tun: TunDevice, o: { eagerPeerLimit?: number; lazyIdleMs?: number }): Promise<EngineHost> =>
    EngineHost.start({ ifname: 'unused', port: 0, mtu: 1280, nodePrivateKey: node, discoPrivateKey: disco, logger: (m) => logs.push(m), tun, ...o });
  const a = await start(keys.a, keys.da, tuns.a, { lazyIdleMs: 1000 });
  const b = await start(keys.b, keys.db, tuns.b, { eagerPeerLimit: 0 });
  try {
    const viewA = testNodeView(1, { nodeKey: keyToText(publicKeyOf(keys.a)), discoKey: keyToText(publicKeyOf(keys.da)), endpoints: [`127.0.0.1:${a.port}`] });
    const viewB = testNodeView(2, { nodeKey: keyToText(publicKeyOf(keys.b)), discoKey: keyToText(publicKeyOf(keys.db)), endpoints: [`127.0.0.1:${b.port}`] });
    const crowd = Array.from({ length: SYNTHETIC_PEERS }, (_, i) => synthetic(i));
    assert.deepEqual(a.applyMap(mapOf(viewA, [...crowd, viewB])), { added: SYNTHETIC_PEERS + 1, removed: 0, total: SYNTHETIC_PEERS + 1 });
    b.applyMap(mapOf(viewB, [viewA]));

    // nothing talks: no engine peer, not one disco ping to 2,001 peers' candidates
    assert.deepEqual(a.peerCounts(), { table: SYNTHETIC_PEERS + 1, engine: 0 });
    assert.deepEqual(b.peerCounts(), { table: 1, engine: 0 });
    assert.equal(a.counters().disco.tx, 0, 'idle peers are not probed');
    assert.deepEqual(a.peerState(crowd[7]!.nodeKey), { path: { kind: 'none' }, active: false, lastHandshakeWallMs: 0, txBytes: 0, rxBytes: 0 });
    assert.ok(a.isConfigured(crowd[1999]!.nodeKey));
    assert.ok(
      crowd.every((v) => a.isConfigured(v.nodeKey) && a.peerState(v.nodeKey)?.path.kind === 'none'),
      'every peer of the map is in the table and answers status from it',
    );

    // an exit node joins (a default route): internet traffic makes its engine peer
    const exitNode = { ...synthetic(SYNTHETIC_PEERS), name: 'exit' };
    exitNode.allowedIps = [...exitNode.allowedIps, '0.0.0.0/0'];
    assert.deepEqual(a.applyMap(mapOf(viewA, [...crowd, viewB, exitNode])), { added: 1, removed: 0, total: SYNTHETIC_PEERS + 2 });
    tuns.a.inject(ipv4Packet('100.64.0.1', '192.0.2.80', 20));
    assert.equal(a.peerCounts().engine, 1, "internet traffic made the exit node's engine peer");

    // a packet from A's TUN to B's address: A makes B's engine peer (B's own address beats the exit node's default route),
    // B makes A's from the initiation, the packet arrives
    const pkt = ipv4Packet('100.64.0.1', '100.64.0.2', 32, 0x5a);
    tuns.a.inject(pkt);
    assert.deepEqual(a.peerCounts(), { table: SYNTHETIC_PEERS + 2, engine: 2 }, 'the first packet made the engine peer');
    await until('the packet at B', () => tuns.b.written.some((p) => p.equals(pkt)));
    assert.equal(b.peerCounts().engine, 1, 'B made its engine peer for A from the handshake');
    assert.ok(a.peerState(viewB.nodeKey)!.lastHandshakeWallMs > 0, 'A completed the handshake');
    assert.ok(b.peerState(viewA.nodeKey)!.rxBytes > 0);
    // the exit node leaves the map: its engine peer goes with it
    assert.deepEqual(a.applyMap(mapOf(viewA, [...crowd, viewB])), { added: 0, removed: 1, total: SYNTHETIC_PEERS + 1 });
    assert.equal(a.peerCounts().engine, 1, 'the crowd stays lazy');
    // and back: B answers over the session A started
    const back = ipv4Packet('100.64.0.2', '100.64.0.1', 40, 0x33);
    tuns.b.inject(back);
    await until('the answer at A', () => tuns.a.written.some((p) => p.equals(back)));

    // a map that changes another peer leaves the talking pair's session alone
    const hs = a.peerState(viewB.nodeKey)!.lastHandshakeWallMs;
    crowd[3] = { ...crowd[3]!, endpoints: ['127.0.0.1:7'] };
    assert.deepEqual(a.applyMap(mapOf(viewA, [...crowd, viewB])), { added: 0, removed: 0, total: SYNTHETIC_PEERS + 1 });
    assert.equal(a.peerState(viewB.nodeKey)!.lastHandshakeWallMs, hs);
    assert.equal(a.peerCounts().engine, 1);

    // idle for lazyIdleMs: the engine peer goes; the next packet makes it again
    await until('A drops its idle engine peer', () => a.peerCounts().engine === 0);
    const again = ipv4Packet('100.64.0.1', '100.64.0.2', 24, 0x77);
    tuns.a.inject(again);
    await until('the packet after the drop at B', () => tuns.b.written.some((p) => p.equals(again)));
    assert.equal(a.peerCounts().engine, 1);

    // a peer the map drops goes from the table and the engine
    assert.deepEqual(a.applyMap(mapOf(viewA, crowd)), { added: 0, removed: 1, total: SYNTHETIC_PEERS });
    assert.deepEqual(a.peerCounts(), { table: SYNTHETIC_PEERS, engine: 0 });
    assert.equal(a.peerState(viewB.nodeKey), null);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('lazy peers: up to the eager limit every online peer gets its engine peer at once (a path before the first packet)', async () => {
  const tun = memTun();
  const h = await EngineHost.start({
    ifname: 'unused',
    port: 0,
    mtu: 1280,
    nodePrivateKey: generatePrivateKey(),
    discoPrivateKey: generatePrivateKey(),
    logger: () => {},
    tun,
    eagerPeerLimit: 3,
  });
  try {
    const self = testNodeView(1);
    const peers = [2, 3, 4].map((i) => testNodeView(i, { endpoints: ['127.0.0.1:9'] }));
    h.applyMap(mapOf(self, peers));
    assert.deepEqual(h.peerCounts(), { table: 3, engine: 3 });
    h.applyMap(mapOf(self, [...peers, testNodeView(5, { endpoints: ['127.0.0.1:9'] })]));
    assert.deepEqual(h.peerCounts(), { table: 4, engine: 3 }, 'past the limit a new peer waits for its first packet');
    h.applyMap(mapOf(self, [{ ...peers[0]!, online: false }, ...peers.slice(1)]));
    assert.deepEqual(h.peerCounts(), { table: 2, engine: 2 }, 'offline peers are not configured');
  } finally {
    await h.stop();
  }
});
