// Self time by function from V8 .cpuprofile files (node --cpu-prof): `node dist/bench/cpuprofile.js FILE... [--top N]`.
// Each sample's time delta goes to the function on top of the stack then; functions are keyed by name and
// source position, so the same function in two profiles adds up. Idle and GC are listed as V8 names them.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  fn: string;
  ms: number;
  share: number;
}

/** Self time per function of one or more parsed profiles, largest first; `share` is of all sampled time, idle included. */
export function selfTimes(profiles: Profile[]): { totalMs: number; rows: SelfTime[] } {
  const byFn = new Map<string, number>();
  let total = 0;
  for (const p of profiles) {
    const key = new Map<number, string>();
    for (const n of p.nodes) {
      const f = n.callFrame;
      const where = f.url ? ` ${basename(f.url)}:${f.lineNumber + 1}` : '';
      key.set(n.id, `${f.functionName || '(anonymous)'}${where}`);
    }
    for (let i = 0; i < p.samples.length; i++) {
      const us = p.timeDeltas[i] ?? 0;
      if (us <= 0) continue;
      const k = key.get(p.samples[i]!) ?? '?';
      byFn.set(k, (byFn.get(k) ?? 0) + us);
      total += us;
    }
  }
  const rows = [...byFn].map(([fn, us]) => ({ fn, ms: us / 1000, share: total ? us / total : 0 })).sort((a, b) => b.ms - a.ms);
  return { totalMs: total / 1000, rows };
}

function main(): void {
  const args = process.argv.slice(2);
  const t = args.indexOf('--top');
  const top = t >= 0 ? Number(args[t + 1]) : 30;
  const files = args.filter((a, i) => a !== '--top' && (t < 0 || i !== t + 1));
  if (!files.length) {
    console.error('usage: node dist/bench/cpuprofile.js FILE.cpuprofile... [--top N]');
    process.exit(2);
  }
  const { totalMs, rows } = selfTimes(files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Profile));
  const busy = rows.filter((r) => r.fn !== '(idle)' && !r.fn.startsWith('(program)')).reduce((n, r) => n + r.ms, 0);
  console.log(`${files.length} profile(s), ${totalMs.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms not idle`);
  for (const r of rows.slice(0, top)) console.log(`${r.ms.toFixed(0).padStart(8)} ms ${(100 * r.share).toFixed(1).padStart(5)} %  ${r.fn}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
