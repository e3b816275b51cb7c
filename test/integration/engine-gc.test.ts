// An engine's first seconds of traffic carry no memory-reducing collection:
// V8's reducer would run one ~8 s after start-up (4–24 ms pauses, the new data
// path deoptimised); bin/meshctl disarms it for the daemon and `debug engine`,
// which release memory themselves when quiet (src/util/idle-memory.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootSkipReason } from '../helpers/root.js';
import { Lab } from '../helpers/netns.js';
import { addPeer, startPeer, type WgPeer } from '../helpers/wg-peer.js';

const skip = rootSkipReason('ping');
// the reducer's first collection came 8.2 s after start in every traced run
const TRAFFIC_SECONDS = 11;

async function stopAndReadStdout(p: WgPeer, out: () => string): Promise<string> {
  if (p.proc.exitCode !== null) return out();
  const exited = new Promise((r) => p.proc.once('exit', r));
  p.proc.kill('SIGTERM');
  await exited;
  return out();
}

test('no memory-reducing collection during a new tunnel’s first seconds', { skip, timeout: 60_000 }, async () => {
  const lab = new Lab();
  const saved = process.env.MESHCTL_TEST_NODE_ARGS;
  // V8 prints its trace through stdio, which reaches the pipe when the engine exits. The data path makes almost
  // no garbage, so a 1 MiB young generation makes sure start-up alone runs scavenges: a trace with none means it
  // never reached the pipe. The reducer's decisions do not depend on the young generation's size.
  process.env.MESHCTL_TEST_NODE_ARGS = '--trace-gc --max-semi-space-size=1';
  try {
    const nsA = await lab.netns('ga');
    const nsB = await lab.netns('gb');
    await lab.link(nsA, '10.79.0.1/24', nsB, '10.79.0.2/24');
    const a = await startPeer(lab, 'meshctl', nsA, { port: 51830, inner4: '10.80.0.1/24', inner6: 'fd80::1/64' });
    const b = await startPeer(lab, 'meshctl', nsB, { port: 51830, inner4: '10.80.0.2/24', inner6: 'fd80::2/64' });
    let outA = '';
    let outB = '';
    a.proc.stdout!.on('data', (d: Buffer) => (outA += d.toString()));
    b.proc.stdout!.on('data', (d: Buffer) => (outB += d.toString()));
    await addPeer(lab, a, b, '10.80.0.2/32', '10.79.0.2:51830');
    await addPeer(lab, b, a, '10.80.0.1/32', '10.79.0.1:51830');
    const count = TRAFFIC_SECONDS * 200;
    const r = await lab.exec(nsA, ['ping', '-q', '-c', String(count), '-i', '0.005', '-W', '1', '10.80.0.2'], (TRAFFIC_SECONDS + 20) * 1000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const [name, p, out] of [
      ['A', a, () => outA],
      ['B', b, () => outB],
    ] as const) {
      const trace = await stopAndReadStdout(p, out);
      const gcs = trace.split('\n').filter((l) => / ms: (Scavenge|Mark-Compact|Mark-sweep)/.test(l));
      assert.ok(gcs.length > 0, `engine ${name}: no GC trace captured, so nothing was checked:\n${trace.slice(0, 500)}`);
      const reducing = gcs.filter((l) => l.includes('(reduce)'));
      assert.deepEqual(reducing, [], `engine ${name} ran memory-reducing collections while the tunnel carried traffic`);
    }
  } finally {
    if (saved === undefined) delete process.env.MESHCTL_TEST_NODE_ARGS;
    else process.env.MESHCTL_TEST_NODE_ARGS = saved;
    await lab.cleanup();
  }
});
