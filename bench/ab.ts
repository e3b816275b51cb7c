// Two builds of meshctl compared in interleaved pairs (docs/performance.md, "Method"):
// each pair measures the engine pair of build A and of build B (ABBA order), and the
// median of the per-pair B/A ratios is printed for each figure.
// usage: sudo node dist/bench/ab.js DIR_A DIR_B [--pairs N] [--seconds S] [--env-b NAME=VALUE]
// (each DIR is a checkout built with `npm run build`; DIR_A and DIR_B may be the same build, with B run with the
// environment variable of --env-b, e.g. MESHCTL_ENGINE_ACL_RULES=bench/acl-rules.json for the access filter's cost)
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { median } from './procstat.js';
import type { PairResult } from './wg-pair.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const dirs = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
const envB = args.indexOf('--env-b') >= 0 ? args[args.indexOf('--env-b') + 1] : undefined;
const envBEq = envB?.indexOf('=') ?? -1;
if (envB !== undefined && envBEq <= 0) {
  console.error('--env-b: give NAME=VALUE');
  process.exit(2);
}
if (dirs.length !== 2) {
  console.error('usage: node dist/bench/ab.js DIR_A DIR_B [--pairs N] [--seconds S]');
  process.exit(2);
}
const [a, b] = dirs.map((d) => resolve(d)) as [string, string];
const pairs = opt('--pairs', 5);
const seconds = opt('--seconds', 10);
const KEYS = ['tcp1Mbps', 'tcp4Mbps', 'udpMbps', 'cpuSecPerGb', 'engineCpuSecPerGb', 'rttWarmMedianMs'] as const;

/**
 * CPU per GB: the whole machine's (/proc/stat) when both builds measure it, else the engine processes' own,
 * so a build from before the machine-wide figure still compares like with like.
 */
function cpuOf(ra: PairResult, rb: PairResult): [number | null | undefined, number | null | undefined] {
  return typeof ra.machineCpuSecPerGb === 'number' && typeof rb.machineCpuSecPerGb === 'number'
    ? [ra.machineCpuSecPerGb, rb.machineCpuSecPerGb]
    : [ra.cpuSecPerGb, rb.cpuSecPerGb];
}

/** One measurement of a build, in its own process, so each build runs its own code. */
function measure(dir: string, env: NodeJS.ProcessEnv = {}): PairResult {
  const code = `import(${JSON.stringify(`${dir}/dist/bench/wg-pair.js`)}).then((m) => m.measurePair('meshctl', ${seconds})).then((r) => console.log(JSON.stringify(r)))`;
  const out = execFileSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...process.env, ...env } })
    .trim()
    .split('\n');
  return JSON.parse(out[out.length - 1]!) as PairResult;
}

const ratios = new Map<string, number[]>(KEYS.map((k) => [k, []]));
for (let i = 0; i < pairs; i++) {
  const r = new Map<string, PairResult>();
  const bEnv = envB === undefined ? {} : { [envB.slice(0, envBEq)]: envB.slice(envBEq + 1) };
  for (const side of i % 2 === 0 ? ['a', 'b'] : ['b', 'a']) r.set(side, side === 'a' ? measure(a) : measure(b, bEnv));
  const ra = r.get('a')!;
  const rb = r.get('b')!;
  const line = KEYS.map((k) => {
    // engineCpuSecPerGb: the two engine processes' own CPU per GB, which other work on a shared machine does not inflate
    const [x, y] = k === 'cpuSecPerGb' ? cpuOf(ra, rb) : k === 'engineCpuSecPerGb' ? [ra.cpuSecPerGb, rb.cpuSecPerGb] : [ra[k], rb[k]];
    if (typeof x === 'number' && typeof y === 'number' && x > 0) ratios.get(k)!.push(y / x);
    return `${k} ${x?.toFixed(2)} → ${y?.toFixed(2)}`;
  });
  console.log(`pair ${i + 1}/${pairs}: ${line.join(', ')}`);
}
console.log(
  `median B/A: ${KEYS.map((k) => {
    const v = ratios.get(k)!;
    return `${k} ${v.length ? median(v).toFixed(3) : 'n/a'} [${v.map((x) => x.toFixed(2)).join(' ')}]`;
  }).join(', ')}`,
);
