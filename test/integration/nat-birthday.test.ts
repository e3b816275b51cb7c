// Port prediction in the lab: a node behind an easy NAT and one behind a hard
// NAT (nftables `masquerade random`, a random public port per destination) go
// direct once traffic flows, through the port a probe of the easy side found
// among the hard side's extra sockets' mappings; a TCP transfer over it
// arrives intact. Prints its NAT matrix row with the time it took.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Lab, tearDown } from '../../src/lab/lab.js';
import type { LabNode } from '../../src/lab/topology.js';
import type { Status } from '../../src/localapi/types.js';
import { packageRoot } from '../../src/cli/version.js';
import { rootSkipReason } from '../helpers/root.js';
import { sh } from '../helpers/netns.js';
import { nodeStatus as status, pathTo } from '../helpers/lab-status.js';
import { labTransfer } from '../helpers/lab-xfer.js';

const skip = rootSkipReason('nft', 'ss', 'ping');
const BIN = join(packageRoot(), 'bin', 'meshctl');
/** the goal: direct within this long of traffic starting */
const DIRECT_WITHIN_MS = 10_000;

/** the part of port prediction's counters (`status --json` → counters.birthday) this test reads */
interface PredictionCounters {
  wins: number;
  probesSent: number;
  probeBytes: number;
  socketsOpened: number;
  socketsOpen: number;
}

function birthday(s: Status): PredictionCounters {
  const c = (s.counters as { birthday?: PredictionCounters } | null)?.birthday;
  assert.ok(c, 'status --json has counters.birthday (port prediction)');
  return c;
}

test('hard NAT ↔ easy NAT: port prediction makes a direct path within 10 s of traffic; TCP over it is intact', { skip, timeout: 120_000 }, async (t) => {
  const name = `b${randomBytes(4).readUInt32BE(0).toString(36).padStart(7, '0').slice(-5)}`;
  const l = await Lab.create({ name, kinds: ['easy', 'hard'], bin: BIN, dir: `/tmp/meshctl-lab-${name}` });
  let pinger: ReturnType<typeof spawn> | null = null;
  try {
    await l.build({ name, kinds: [], bin: BIN });
    await l.startServers();
    const [easy, hard] = l.s.nodes as [LabNode, LabNode];
    await l.upAll();
    await l.waitFor('both nodes see each other over a relay', async () => (await pathTo(l, easy, hard)).kind !== 'none', 20_000);
    await l.waitFor('netcheck found the hard NAT', async () => {
      const nc = JSON.parse((await l.meshctl(hard, ['netcheck', '--json'])).out) as { mappingVariesByDestIP: boolean | null };
      return nc.mappingVariesByDestIP === true;
    });
    const hardIp = (await status(l, hard)).self!.ips[0]!;
    // traffic: ICMP through the tunnel, 5 per second, for as long as the test needs
    const started = Date.now();
    pinger = spawn('ip', ['netns', 'exec', easy.ns, 'ping', '-i', '0.2', '-W', '1', hardIp], { stdio: 'ignore' });
    let ms = -1;
    await l.waitFor(
      'a direct path from easy to hard',
      async () => {
        const p = await pathTo(l, easy, hard);
        if (p.kind !== 'direct' || !p.trusted) return false;
        ms = Date.now() - started;
        return true;
      },
      25_000,
    );
    const path = await pathTo(l, easy, hard);
    assert.equal(path.kind, 'direct');
    const [addr, port] = (path.kind === 'direct' ? path.endpoint : '').split(':');
    assert.equal(addr, hard.wanIp, 'the hard NAT’s public address');
    const hs = birthday(await status(l, hard));
    const es = birthday(await status(l, easy));
    assert.ok(hs.wins >= 1, `the hard side won with one of its sockets: ${JSON.stringify(hs)}`);
    assert.equal(hs.socketsOpen, 1, 'only the winning socket stays open');
    assert.ok(es.probesSent > 0 && es.probesSent <= 1200, `the easy side probed within its budget: ${JSON.stringify(es)}`);
    // the hard node's main socket never reached the easy side's port: the path is a predicted one
    const rev = await pathTo(l, hard, easy);
    assert.equal(rev.kind === 'direct' && rev.trusted, true, `hard → easy direct too: ${JSON.stringify(rev)}`);
    assert.ok(ms <= DIRECT_WITHIN_MS, `direct ${ms} ms after traffic started (goal ≤ ${DIRECT_WITHIN_MS} ms)`);

    // a TCP transfer over the predicted path, checked end to end
    const bytes = 8 * 1024 * 1024;
    await labTransfer(l, easy, hard, bytes, { port: 5302, clientTimeoutMs: 60_000 });
    const after = await pathTo(l, easy, hard);
    assert.equal(after.kind === 'direct' && after.endpoint, path.kind === 'direct' && path.endpoint, 'the transfer stayed on the predicted path');
    const row =
      `hard ↔ easy: direct via ${hard.wanIp}:${port} (predicted), ${ms} ms after traffic started; ` +
      `easy side ${es.probesSent} probes / ${es.probeBytes} B, hard side ${hs.socketsOpened} sockets / ${hs.probeBytes} B; 8 MiB TCP intact`;
    t.diagnostic(`NAT matrix: ${row}`);
    process.stderr.write(`\nNAT matrix (lab): ${row}\n`);
  } catch (err) {
    // the daemons' own account of prediction and paths, before teardown removes it
    for (const n of l.s.nodes) {
      const log = await sh('grep', ['-h', '-e', 'port prediction', '-e', 'path to', join(l.s.dir, `${n.name}.log`), join(l.s.dir, n.name, 'daemon.log')]);
      process.stderr.write(`--- ${n.name}\n${log.stdout}`);
    }
    throw err;
  } finally {
    pinger?.kill('SIGKILL');
    await tearDown(l.s);
  }
});
