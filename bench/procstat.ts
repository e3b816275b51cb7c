// CPU time and memory from /proc, for the bench's CPU-per-GB and RSS figures: the
// whole machine's busy time (/proc/stat) and one process's own (/proc/PID/stat).
import { readFileSync } from 'node:fs';

const CLK_TCK = 100; // Linux USER_HZ

/** Busy and all CPU time of the machine, in USER_HZ ticks, summed over every CPU. */
export interface CpuTicks {
  busy: number;
  total: number;
}

/**
 * The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal guest guest_nice.
 * Busy is user + nice + system + irq + softirq: softirq is where the kernel's network receive work lands,
 * often in no engine's process, so it counts. Idle, iowait and steal are not this machine's work;
 * guest and guest_nice are already inside user and nice.
 */
export function parseProcStatCpu(text: string): CpuTicks {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  const f = line?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  if (f.length < 8 || f.slice(0, 8).some((x) => !Number.isSafeInteger(x) || x < 0)) {
    throw new Error(`/proc/stat: no aggregate cpu line with 8 tick counts (got ${JSON.stringify(line?.slice(0, 80) ?? null)})`);
  }
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
  const busy = user + nice + system + irq + softirq;
  return { busy, total: busy + idle + iowait + steal };
}

export const machineCpuTicks = (): CpuTicks => parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));

/** Busy CPU seconds of the whole machine between two readings of /proc/stat. */
export const busySecondsBetween = (a: CpuTicks, b: CpuTicks): number => (b.busy - a.busy) / CLK_TCK;

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
