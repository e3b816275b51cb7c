// Time from `meshctl up` (both nodes) to the first direct path in the lab's
// easy-NAT setup: two nodes behind port-preserving NATs, control and relays
// on the lab's internet.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Lab, tearDown } from '../src/lab/lab.js';
import { packageRoot } from '../src/cli/version.js';
import type { Status } from '../src/localapi/types.js';

const BIN = join(packageRoot(), 'bin', 'meshctl');

export async function measureLabDirect(): Promise<{ upToFirstPingMs: number; upToDirectMs: number }> {
  const name = `b${process.pid % 10000}`;
  const l = await Lab.create({ name, kinds: ['easy', 'easy'], bin: BIN, dir: `/tmp/meshctl-bench-${name}` });
  try {
    await l.build({ name, kinds: [], bin: BIN });
    await l.startServers();
    const [a, b] = l.s.nodes as [(typeof l.s.nodes)[0], (typeof l.s.nodes)[0]];
    const t0 = performance.now();
    const ups = await Promise.all([l.up(a), l.up(b)]);
    for (const u of ups) if (u.code !== 0) throw new Error(`up: ${u.err}`);
    const st = (n: typeof a): Status => JSON.parse(spawnSync(process.execPath, [BIN, '--socket', l.socket(n), 'status', '--json'], { encoding: 'utf8' }).stdout) as Status;
    const ipB = st(b).self!.ips[0]!;
    let firstPing = NaN;
    let directAt = NaN;
    for (;;) {
      if (Number.isNaN(firstPing) && spawnSync('ip', ['netns', 'exec', a.ns, 'ping', '-c', '1', '-W', '1', ipB]).status === 0) firstPing = performance.now() - t0;
      const p = st(a).peers[0]?.path;
      if (Number.isNaN(directAt) && p?.kind === 'direct' && p.trusted) directAt = performance.now() - t0;
      if (!Number.isNaN(directAt) && !Number.isNaN(firstPing)) break;
      if (performance.now() - t0 > 60_000) throw new Error('no direct path within 60 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    return { upToFirstPingMs: firstPing, upToDirectMs: directAt };
  } finally {
    await tearDown(l.s);
  }
}
