// Time from `meshctl up` (both nodes) to the first direct path in the lab's
// easy-NAT setup: two nodes behind port-preserving NATs, control and relays
// on the lab's internet.
import { join } from 'node:path';
import { Lab, tearDown } from '../src/lab/lab.js';
import { packageRoot } from '../src/cli/version.js';
import type { Status } from '../src/localapi/types.js';
import { sh } from '../test/helpers/netns.js';
import { firstReply } from './first-reply.js';

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
    const st = async (n: typeof a): Promise<Status> =>
      JSON.parse((await sh(process.execPath, [BIN, '--socket', l.socket(n), 'status', '--json'])).stdout) as Status;
    const ipB = (await st(b)).self!.ips[0]!;
    // timed apart, so neither waits on the other
    const firstPing = firstReply(a.ns, ipB, 60_000).then(() => performance.now() - t0);
    const direct = (async (): Promise<number> => {
      for (;;) {
        const p = (await st(a)).peers[0]?.path;
        if (p?.kind === 'direct' && p.trusted) return performance.now() - t0;
        if (performance.now() - t0 > 60_000) throw new Error('no direct path within 60 s');
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const [upToFirstPingMs, upToDirectMs] = await Promise.all([firstPing, direct]);
    return { upToFirstPingMs, upToDirectMs };
  } finally {
    await tearDown(l.s);
  }
}
