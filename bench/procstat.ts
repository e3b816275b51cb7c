// CPU time and memory of a process from /proc, for the bench's CPU-per-GB and RSS figures.
import { readFileSync } from 'node:fs';

const CLK_TCK = 100; // Linux USER_HZ

/** User + system CPU seconds of `pid`, all threads. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

export const rssMb = (pid: number): number => statusKb(pid, 'VmRSS') / 1024;
export const peakRssMb = (pid: number): number => statusKb(pid, 'VmHWM') / 1024;
/** RSS split: anonymous (heaps, stacks) and file-backed (the node binary, libraries: shared with other Node processes) */
export const rssPartsMb = (pid: number): { anon: number; file: number } => ({ anon: statusKb(pid, 'RssAnon') / 1024, file: statusKb(pid, 'RssFile') / 1024 });

export const median = (xs: number[]): number => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * p))]! : NaN;
}
