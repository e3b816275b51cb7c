// Repeated trials of one NAT pair in a fresh lab each time: how often two nodes
// of the given kinds end up with a direct path, and how long from `meshctl up`
// (both at once) until both daemons trust it. Generic over the lab's kinds, so
// any pair can be measured (bare ↔ easy, hard ↔ easy, …).
//
//   node dist/bench/nat-trials.js --pair easy-bare,easy --trials 20 [--transit] [--router-firewall none] [--timeout-s 90]
//
// Root. Prints one line per trial and then the successes and the time to
// direct (p50, max) of those that succeeded.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Lab, tearDown } from '../src/lab/lab.js';
import { NAT_KINDS, type LabNode, type NatKind, type RouterFirewall } from '../src/lab/topology.js';
import { packageRoot } from '../src/cli/version.js';
import { untilBothDirect } from '../test/helpers/direct-wait.js';

const BIN = join(packageRoot(), 'bin', 'meshctl');
/** Trials one run may ask for: each builds and tears down a lab (~5 s plus the wait). */
const MAX_TRIALS = 200;
/** A trial's default wait for the direct path: two failed attempts and their conntrack backoff (docs/nat.md) fit in it. */
const DEFAULT_TIMEOUT_S = 90;

export interface NatTrialOptions {
  kinds: [NatKind, NatKind];
  transit?: boolean;
  routerFirewall?: RouterFirewall;
  timeoutMs: number;
  /** extra environment for both daemons */
  env?: Record<string, string>;
}

/** One fresh lab with the two nodes: ms from both `up`s starting until both trust a direct path, or null. */
export async function natTrial(o: NatTrialOptions, tag: string): Promise<number | null> {
  const name = `n${tag}`.slice(0, 6);
  const l = await Lab.create({
    name,
    kinds: o.kinds,
    bin: BIN,
    dir: `/tmp/meshctl-trials-${name}`,
    transit: o.transit,
    routerFirewall: o.routerFirewall,
    env: o.env,
  });
  try {
    await l.build({ name, kinds: [], bin: BIN });
    await l.startServers();
    const [a, b] = l.s.nodes as [LabNode, LabNode];
    const t0 = performance.now();
    const ups = await Promise.all([l.up(a), l.up(b)]);
    for (const u of ups) if (u.code !== 0) throw new Error(`meshctl up: ${u.err.trim().split('\n').pop()}`);
    return await untilBothDirect(l, a, b, t0, o.timeoutMs);
  } finally {
    await tearDown(l.s);
  }
}

export function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function parseArgs(argv: string[]): NatTrialOptions & { trials: number } {
  const val = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const pair = (val('--pair') ?? 'easy-bare,easy').split(',');
  if (pair.length !== 2 || pair.some((k) => !(NAT_KINDS as readonly string[]).includes(k)))
    throw new Error(`--pair: two of ${NAT_KINDS.join(', ')}, comma-separated (e.g. --pair easy-bare,easy)`);
  const trials = Number(val('--trials') ?? '20');
  if (!Number.isInteger(trials) || trials < 1 || trials > MAX_TRIALS) throw new Error(`--trials: a whole number from 1 to ${MAX_TRIALS}`);
  const timeoutS = Number(val('--timeout-s') ?? String(DEFAULT_TIMEOUT_S));
  if (!(timeoutS > 0 && timeoutS <= 600)) throw new Error('--timeout-s: seconds, from 1 to 600');
  const fw = val('--router-firewall') ?? 'drop';
  if (fw !== 'drop' && fw !== 'none') throw new Error('--router-firewall: drop or none');
  return { kinds: pair as [NatKind, NatKind], trials, transit: argv.includes('--transit'), routerFirewall: fw, timeoutMs: timeoutS * 1000 };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const label = `${o.kinds.join(' ↔ ')}${o.transit ? ' (transit hop)' : ''}${o.routerFirewall === 'none' ? ' (router firewall none)' : ''}`;
  const times: number[] = [];
  for (let i = 1; i <= o.trials; i++) {
    const ms = await natTrial(o, `${process.pid % 1000}${i}`);
    process.stdout.write(
      `trial ${i}/${o.trials} ${label}: ${ms === null ? `relayed (no direct path within ${o.timeoutMs / 1000} s)` : `direct after ${(ms / 1000).toFixed(2)} s`}\n`,
    );
    if (ms !== null) times.push(ms);
  }
  times.sort((x, y) => x - y);
  const summary = times.length
    ? `time to direct p50 ${(percentile(times, 0.5) / 1000).toFixed(2)} s, max ${(times[times.length - 1]! / 1000).toFixed(2)} s`
    : 'no direct path in any trial';
  process.stdout.write(`${label}: direct in ${times.length} of ${o.trials} trials; ${summary}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  main().catch((err: unknown) => {
    process.stderr.write(`nat-trials: ${(err as Error).message}\n`);
    process.exit(1);
  });
