// What the data path allocates per packet, measured with V8's sampling heap
// profiler (collected objects included) while two engines exchange packets
// over loopback UDP. Garbage is what the young generation's page faults and
// scavenges cost on the latency path (docs/performance.md, "Per-packet
// garbage"); this guards the level reached, so a new object per packet shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session } from 'node:inspector';
import { ipv4Packet, loopbackPair, until } from '../helpers/loopback-pair.js';

/**
 * Bytes per packet, the sending and the receiving engine together. Measured
 * 830–850 (Node 20.20); with the send path's former Buffer and copy per packet,
 * 940–966, which this limit catches. MESHCTL_ALLOC_LIMIT overrides it, say on
 * another Node whose dgram allocates differently.
 */
const LIMIT = Number(process.env.MESHCTL_ALLOC_LIMIT ?? 920);
const BATCH = 32;

interface ProfileNode {
  selfSize: number;
  children: ProfileNode[];
}

function post<T>(s: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => s.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))));
}

test(`the data path allocates under ${LIMIT} bytes per packet (both engines, seal to open, V8 sampling profiler)`, async (t) => {
  const got = [0, 0];
  const pair = await loopbackPair((i) => void got[i]++);
  const session = new Session();
  session.connect();
  t.after(async () => {
    session.disconnect();
    await pair.close();
  });
  const { devs, inner } = pair;
  devs[0].sendPackets([ipv4Packet(inner[0], inner[1], 64)]);
  await until(() => got[1] === 1);
  const batches = [0, 1].map((i) => Array.from({ length: BATCH }, () => ipv4Packet(inner[i]!, inner[1 - i]!, 64)));
  const rounds = async (n: number): Promise<void> => {
    for (let r = 0; r < n; r++) {
      const want = [got[0]! + BATCH, got[1]! + BATCH];
      devs[0].sendPackets(batches[0]!);
      devs[1].sendPackets(batches[1]!);
      await until(() => got[0]! >= want[0]! && got[1]! >= want[1]!);
      assert.deepEqual(got, want, 'every packet arrived');
    }
  };
  await rounds(60); // the data path is compiled and its caches are built
  await post(session, 'HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  const n = 100;
  await rounds(n);
  const { profile } = await post<{ profile: { head: ProfileNode } }>(session, 'HeapProfiler.stopSampling');
  let total = 0;
  const walk = (node: ProfileNode): void => {
    total += node.selfSize;
    node.children.forEach(walk);
  };
  walk(profile.head);
  const perPacket = total / (n * BATCH * 2);
  t.diagnostic(`${perPacket.toFixed(0)} bytes allocated per packet (${n * BATCH * 2} packets)`);
  assert.ok(perPacket > 0, 'the profiler saw the allocations');
  assert.ok(perPacket < LIMIT, `${perPacket.toFixed(0)} bytes per packet (limit ${LIMIT}): a new allocation on the data path? see docs/performance.md`);
});
