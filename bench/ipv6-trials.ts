// Direct paths over IPv6, trial after trial: each trial builds a fresh lab
// with --ipv6 and two sites whose IPv4 is behind hard NATs (endpoint-dependent
// mapping: relayed over IPv4) and whose IPv6 is routed behind stateful
// firewalls, brings both nodes up at once, and times `up` → a trusted direct
// path over IPv6 on both sides. Prints each trial, the successes and the
// time-to-direct p50 and max.
//
//   sudo node dist/bench/ipv6-trials.js --trials 20
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Lab, tearDown } from '../src/lab/lab.js';
import { packageRoot } from '../src/cli/version.js';
import type { LabNode } from '../src/lab/topology.js';
import type { Status } from '../src/localapi/types.js';

const BIN = join(packageRoot(), 'bin', 'meshctl');
/** A trial that has no direct IPv6 path this long after `up` counts as a failure. */
const DIRECT_DEADLINE_MS = 30_000;
/** Status polling interval: short against the seconds being measured, cheap on 2 cores. */
const POLL_MS = 100;
/** Builds of a trial's lab that may fail (a server slow to start on a loaded machine) before the run gives up: they measure the machine, not paths. */
const SETUP_RETRIES = 3;

/** The lab could not be built or its servers started: the trial is built again, not counted. */
class SetupError extends Error {}

async function direct6(l: Lab, from: LabNode, to: LabNode, t0: number): Promise<number | null> {
  while (performance.now() - t0 < DIRECT_DEADLINE_MS) {
    const r = await l.meshctl(from, ['status', '--json']);
    if (r.code === 0) {
      const p = (JSON.parse(r.out) as Status).peers.find((x) => x.name === to.name)?.path;
      if (p?.kind === 'direct' && p.trusted && p.endpoint.startsWith('[')) return performance.now() - t0;
    }
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
  return null;
}

export async function ipv6Trial(i: number): Promise<number | null> {
  const name = `v${process.pid % 1000}${i}`.slice(0, 6);
  const l = await Lab.create({ name, kinds: ['hard', 'hard'], ipv6: true, bin: BIN, dir: `/tmp/meshctl-bench-${name}` });
  try {
    try {
      await l.build({ name, kinds: [], bin: BIN });
      await l.startServers();
    } catch (err) {
      throw new SetupError((err as Error).message);
    }
    const [a, b] = l.s.nodes as [LabNode, LabNode];
    const t0 = performance.now();
    const ups = await Promise.all([l.up(a), l.up(b)]);
    for (const u of ups) if (u.code !== 0) throw new Error(`up: ${u.err.trim()}`);
    const [ab, ba] = await Promise.all([direct6(l, a, b, t0), direct6(l, b, a, t0)]);
    return ab === null || ba === null ? null : Math.max(ab, ba);
  } finally {
    await tearDown(l.s);
  }
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { trials: { type: 'string', default: '20' } } });
  const trials = Number(values.trials);
  if (!Number.isInteger(trials) || trials < 1 || trials > 1000) throw new Error(`--trials ${values.trials}: a whole number 1-1000`);
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (namespaces, nftables): run with sudo');
  const times: number[] = [];
  for (let i = 0; i < trials; i++) {
    let ms: number | null = null;
    for (let attempt = 1; ; attempt++) {
      try {
        ms = await ipv6Trial(i);
        break;
      } catch (err) {
        if (!(err instanceof SetupError) || attempt >= SETUP_RETRIES) throw err;
        process.stdout.write(`trial ${i + 1}: lab setup failed (${err.message}); building it again\n`);
      }
    }
    process.stdout.write(
      `trial ${i + 1}: ${ms === null ? `no direct IPv6 path within ${DIRECT_DEADLINE_MS / 1000} s` : `direct over IPv6 ${ms.toFixed(0)} ms after up`}\n`,
    );
    if (ms !== null) times.push(ms);
  }
  times.sort((x, y) => x - y);
  const stats = times.length ? `time to direct p50 ${quantile(times, 0.5).toFixed(0)} ms, max ${times[times.length - 1]!.toFixed(0)} ms` : 'no successes';
  process.stdout.write(`hard ↔ hard (IPv4) with IPv6 behind stateful firewalls: ${times.length} of ${trials} direct over IPv6; ${stats}\n`);
  if (times.length < trials) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: Error) => {
    process.stderr.write(`ipv6-trials: ${err.message}\n`);
    process.exit(1);
  });
}
