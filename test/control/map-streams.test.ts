// Map streams: one per node (a new one replaces the old), written only while
// the socket takes data (pending maps collapse into the latest), and dropped
// when unsent data passes the limit — so a node that never reads cannot make
// the server buffer without bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin } from '../../src/control/admin-client.js';
import { createAuthKey } from '../../src/control/authkeys.js';
import { MAX_NODE_ENDPOINTS } from '../../src/netmap/types.js';
import { Registry } from '../../src/control/registry.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { stateFiles } from '../../src/control/state-dir.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { discoKey, harness, latestMap, Node, openStream, registerBody, tempDir, until, within, type OpenStream } from './helpers.js';

const P = '/meshctl/v1';

/** MAX_NODE_ENDPOINTS distinct endpoints: the most a node may report, to make maps large. */
const manyEndpoints = (tag: number): string[] => Array.from({ length: MAX_NODE_ENDPOINTS }, (_, i) => `10.${tag % 250}.${i}.1:${41000 + i}`);

/** A state dir whose database already holds `count` nodes with MAX_NODE_ENDPOINTS endpoints each (~0.9 KB each in a map). */
async function populated(count: number): Promise<{ dir: string; privs: Buffer[] }> {
  const dir = tempDir();
  const store = new SqliteStore(stateFiles(dir).db);
  const privs: Buffer[] = [];
  try {
    const key = (await createAuthKey(store, { reusable: true, ephemeral: false, expiryMs: null })).key;
    const reg = await Registry.open(store, { keyExpiryMs: null });
    {
      for (let i = 0; i < count; i++) {
        const priv = generatePrivateKey();
        privs.push(priv);
        await reg.register(keyToText(publicKeyOf(priv)), {
          authKey: key,
          hostname: `n${i}`,
          os: 'linux',
          version: 't',
          discoKey: discoKey(),
          endpoints: manyEndpoints(i),
        });
      }
    }
  } finally {
    await store.close();
  }
  return { dir, privs };
}

test('a second map stream of a node replaces the first; the node stays online', async () => {
  const h = await harness();
  let first: OpenStream | undefined;
  let second: OpenStream | undefined;
  try {
    const authKey = await h.authKey();
    const n = new Node(h.server.publicKey!);
    const w = new Node(h.server.publicKey!);
    assert.equal((await h.post(`${P}/register`, n.seal('register', registerBody(authKey, 'dup')))).status, 200);
    assert.equal((await h.post(`${P}/register`, w.seal('register', registerBody(authKey, 'watcher')))).status, 200);
    first = await openStream(h, n);
    await until(() => first!.lines().length > 0, 5000, 'first map');
    second = await openStream(h, n);
    await within(first.ended, 5000, 'the first stream ends');
    assert.ok(first.res.complete || first.res.destroyed, 'the first stream ended');
    await until(() => second!.lines().length > 0, 5000, 'second map');
    assert.equal(h.server.mapStreamStats().streams.filter((s) => s.nodeId === 1).length, 1);
    assert.equal(h.server.mapStreamStats().replaced, 1);
    const online = (await admin.listNodes(h.dir)).find((x) => x.name === 'dup');
    assert.equal(online?.online, true, 'replacing the stream did not take the node offline');
    // the new stream carries on: a change reaches it
    const before = second.lines().length;
    assert.equal((await h.post(`${P}/endpoints`, w.seal('endpoints', { endpoints: ['192.0.2.7:7'] }))).status, 200);
    await until(
      () =>
        second!
          .lines()
          .slice(before)
          .some((l) => l.includes('192.0.2.7:7')),
      5000,
      'change on the second stream',
    );
  } finally {
    first?.res.destroy();
    second?.res.destroy();
    await h.close();
  }
});

test('a stream whose client never reads is dropped once its unsent data passes the limit', async () => {
  // maps of ~64 KB (80 nodes × 32 endpoints): the first fits a fresh socket, and once the client's
  // socket buffers are full, the map that finds them full leaves more than the limit unsent
  const limit = 32 * 1024;
  const { dir, privs } = await populated(80);
  const h = await harness({ limits: { mapStreamMaxUnsentBytes: limit, maxSeenNoncesPerKey: 10_000 } }, dir);
  let s: OpenStream | undefined;
  try {
    const stalled = new Node(h.server.publicKey!, privs[0]);
    const pusher = new Node(h.server.publicKey!, privs[1]);
    s = await openStream(h, stalled, false);
    let maxUnsent = 0;
    for (let i = 0; h.server.mapStreamStats().dropped === 0; i++) {
      assert.ok(i < 400, `not dropped after ${i} pushes; unsent ${JSON.stringify(h.server.mapStreamStats())}`);
      assert.equal((await h.post(`${P}/endpoints`, pusher.seal('endpoints', { endpoints: manyEndpoints(1000 + i) }))).status, 200);
      await new Promise((r) => setTimeout(r, 30));
      for (const st of h.server.mapStreamStats().streams) maxUnsent = Math.max(maxUnsent, st.unsentBytes);
    }
    // the counter moves when the socket is destroyed; the stream leaves the list on its close event, a turn later
    await until(() => h.server.mapStreamStats().streams.length === 0, 5000, 'the stalled stream is gone');
    // a paused socket reads nothing, so it notices the close only once it reads again
    s.res.resume();
    await within(s.ended, 5000, 'the client sees the close');
    // what waited for it never passed the limit by more than the one map that found it blocked (~65 KB here)
    assert.ok(maxUnsent <= limit + 96 * 1024, `unsent peaked at ${maxUnsent}`);
  } finally {
    s?.res.destroy();
    await h.close();
  }
});

test('while a stream does not take data, pending maps collapse into the latest, which arrives when it reads again', async () => {
  const { dir, privs } = await populated(150);
  const h = await harness({ limits: { maxSeenNoncesPerKey: 10_000 } }, dir);
  let s: OpenStream | undefined;
  try {
    const stalled = new Node(h.server.publicKey!, privs[0]);
    const pusher = new Node(h.server.publicKey!, privs[1]);
    s = await openStream(h, stalled, false);
    let peak = 0;
    const samples: number[] = [];
    let last = '';
    for (let i = 0; h.server.mapStreamStats().coalesced < 20; i++) {
      assert.ok(i < 400, `no coalescing after ${i} pushes: ${JSON.stringify(h.server.mapStreamStats())}`);
      last = `192.0.2.${(i % 250) + 1}:${1000 + i}`;
      assert.equal((await h.post(`${P}/endpoints`, pusher.seal('endpoints', { endpoints: [last] }))).status, 200);
      await new Promise((r) => setTimeout(r, 30));
      const u = h.server.mapStreamStats().streams[0]?.unsentBytes ?? 0;
      samples.push(u);
      peak = Math.max(peak, u);
    }
    const stats = h.server.mapStreamStats();
    assert.equal(stats.dropped, 0);
    assert.equal(stats.streams[0]?.blocked, true);
    // bounded: the last twenty pushes added nothing to what waits for this client
    assert.ok(
      samples.slice(-20).every((u) => u <= samples[samples.length - 21]!),
      `unsent kept growing: ${samples.slice(-22).join(' ')}`,
    );
    s.res.resume();
    await until(() => s!.lines().some((l) => l.includes(`"${last}"`)), 20_000, 'the latest map after reading again');
  } finally {
    s?.res.destroy();
    await h.close();
  }
});

test('streams opened at once (a resync storm) get their first maps over several broadcasts, each within its byte budget', async () => {
  // maps of ~10 KB (12 nodes × 32 endpoints) against a budget of 1 byte: one first map per broadcast
  const { dir, privs } = await populated(12);
  const h = await harness({ limits: { firstMapBytesPerBroadcast: 1 } }, dir);
  const streams: OpenStream[] = [];
  try {
    const opened = await Promise.all(privs.map((p) => openStream(h, new Node(h.server.publicKey!, p))));
    streams.push(...opened);
    await until(() => streams.every((s) => s.lines().some((l) => l.startsWith('{"type":"map"'))), 20_000, 'every first map');
    const stats = h.server.mapStreamStats();
    // every stream got its map, none was dropped, and some waited for a later broadcast
    assert.equal(stats.dropped, 0);
    assert.ok(stats.deferredFirstMaps > 0, JSON.stringify(stats));
  } finally {
    for (const s of streams) s.res.destroy();
    await h.close();
  }
});

test('a policy change that alters every stream map holds at most the in-flight budget of unsent whole maps, and every stream gets its map', async () => {
  // 48 streams whose clients stop reading after the first map (~70 KB each: 80 nodes × 32 endpoints); a policy change
  // then makes each of them a new whole map. Built all at once they would sit unsent in control, ~48 × 70 KB.
  const budget = 128 * 1024;
  const count = 48;
  const { dir, privs } = await populated(80);
  const h = await harness({ limits: { wholeMapBytesInFlight: budget } }, dir);
  const streams: OpenStream[] = [];
  try {
    for (const p of privs.slice(0, count)) streams.push(await openStream(h, new Node(h.server.publicKey!, p)));
    const stats = () => h.server.mapStreamStats();
    const unsent = (): number => stats().streams.reduce((a, s) => a + s.unsentBytes, 0);
    // every stream holds a map that shows all of them online, and control has nothing left to send
    const allOnline = (s: OpenStream): boolean => latestMap(s)?.peers.filter((p) => p.online).length === count - 1;
    await until(() => streams.every(allOnline) && unsent() === 0, 30_000, 'every stream settled');
    const mapBytes = stats().mapBytes / stats().mapsWritten;
    // the clients stop reading
    for (const s of streams) s.res.pause();
    const before = streams.map((s) => s.lines().length);
    await admin.setPolicy(h.dir, '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}');
    // while no client reads: what control holds unsent stays within the budget plus the one map that may start under it
    const bound = budget + 1.5 * mapBytes;
    let peak = 0;
    await until(
      () => {
        peak = Math.max(peak, unsent());
        return peak > bound || (stats().deferredWholeMaps ?? 0) > 0;
      },
      20_000,
      'the policy broadcast',
    );
    for (let i = 0; i < 20; i++) {
      peak = Math.max(peak, unsent());
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(peak <= bound, `${peak} bytes of whole maps unsent at once (budget ${budget}, a map ${mapBytes.toFixed(0)})`);
    assert.ok(stats().peakWholeMapBytesInFlight <= bound, JSON.stringify({ ...stats(), streams: undefined }));
    // the clients read again: every stream ends with the map under the new policy, none dropped
    for (const s of streams) s.res.resume();
    await until(() => streams.every((s) => latestMap(s)?.packetFilter !== undefined), 30_000, 'every stream holds the new map');
    assert.equal(stats().dropped, 0);
    streams.forEach((s, i) => {
      const maps = s
        .lines()
        .slice(before[i])
        .filter((l) => l.startsWith('{"type":"map"'));
      assert.equal(maps.length, 1, 'one map after the policy change, none lost or repeated');
    });
    await until(() => stats().wholeMapBytesInFlight === 0, 5000, 'the budget given back');
  } finally {
    for (const s of streams) s.res.destroy();
    await h.close();
  }
});

test('each broadcast records its stages in order, and the change that caused it is in the state its lines carry', async () => {
  const { dir, privs } = await populated(3);
  const h = await harness({}, dir);
  const streams: OpenStream[] = [];
  try {
    for (const p of privs.slice(0, 2)) streams.push(await openStream(h, new Node(h.server.publicKey!, p)));
    await until(() => streams.every((s) => latestMap(s)?.peers.filter((p) => p.online).length === 1), 10_000, 'both online');
    const pusher = new Node(h.server.publicKey!, privs[2]);
    const t0 = Date.now();
    assert.equal((await h.post(`${P}/endpoints`, pusher.seal('endpoints', { endpoints: ['192.0.2.9:9'] }))).status, 200);
    await until(() => streams.every((s) => latestMap(s)?.peers.some((p) => p.endpoints.includes('192.0.2.9:9'))), 10_000, 'the change on both');
    const t = h.server
      .broadcastTimings()
      .filter((x) => x.startAt >= t0)
      .find((x) => x.wholeMaps === 2);
    assert.ok(t, JSON.stringify(h.server.broadcastTimings().slice(-3)));
    assert.ok(t.queuedAt <= t.startAt && t.startAt <= t.snapshotAt && t.snapshotAt <= t.writtenAt, JSON.stringify(t));
    await until(() => h.server.broadcastTimings().find((x) => x.seq === t.seq)?.flushedAt !== null, 5000, 'flushed');
    assert.ok(h.server.broadcastTimings().find((x) => x.seq === t.seq)!.flushedAt! >= t.writtenAt);
  } finally {
    for (const s of streams) s.res.destroy();
    await h.close();
  }
});
