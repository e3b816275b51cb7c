// Where an engine's time goes under load: a meshctl pair over one veth (wg-pair.ts) with every engine run under
// `--cpu-prof`, one TCP iperf3 stream (or -P N), then each thread's profile summarised by self time: per function,
// and per category (the AEAD's native calls, koffi calls, TUN and UDP I/O, ring hand-overs, GC, idle, the rest), with
// each thread's CPU time from /proc. A reader thread's profile counts its blocking calls (poll, Atomics.wait) as
// self time, so for those threads the /proc figure is the CPU; the main thread's idle is V8's own "(idle)".
// usage: sudo node dist/bench/cpu-profile.js [--seconds S] [--streams N] [--keep DIR] [--no-prof (CPU per thread only)]
//        node dist/bench/cpu-profile.js --summarise FILE.cpuprofile... [--window FROM_US TO_US]   (profiles taken some other way;
//        --window keeps the samples between two CLOCK_MONOTONIC times in microseconds, as bench/control-daemon.ts prints them)
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { busySecondsBetween, machineCpuTicks } from './procstat.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface FunctionTime {
  name: string;
  ms: number;
}
export interface ProfileSummary {
  wallMs: number;
  /** sampled time not idle (program, GC and our functions) */
  busyMs: number;
  byFunction: FunctionTime[];
  byCategory: FunctionTime[];
}

/** user + system CPU seconds of each thread of `pid` */
function threadCpu(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

const base = (url: string): string => url.slice(url.lastIndexOf('/') + 1);

/**
 * The category of a sampled frame. Native functions called through koffi show as the koffi wrapper (or as
 * "(program)" when V8 cannot attribute them); our callers name which native call it was.
 */
function categoryOf(fn: string, url: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8 and native, unattributed';
  const file = base(url);
  if (file === 'aead.js' || file === 'crypto.js') return 'AEAD (EVP calls through koffi, nonce, tag)';
  if (url.includes('koffi')) return 'koffi';
  if (file === 'shm-ring.js' || file.includes('reader-worker') || file === 'tun-reader.js' || file === 'udp-reader.js') return 'reader rings and threads';
  if (file === 'mmsg.js' || file === 'udp.js' || file === 'gro-split.js' || url.startsWith('node:dgram')) return 'UDP send/receive';
  if (url.includes('/tun/') || url.startsWith('node:net') || url.startsWith('node:internal/fs') || url.includes('stream')) return 'TUN read/write, GRO merge';
  if (url.includes('/engine/') || url.includes('/util/')) return 'device bookkeeping (route, replay, timers, counters)';
  if (url.startsWith('node:') || url === '') return 'Node internals and builtins';
  return 'other';
}

/** Samples between two times (V8's profile clock: CLOCK_MONOTONIC in microseconds, as process.hrtime), both ends included. */
export interface SampleWindow {
  fromUs: number;
  toUs: number;
}

export function summarise(p: Profile, window?: SampleWindow): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  // a sample's time is the delta to the next sample (V8's own convention)
  let at = p.startTime;
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    first = Math.min(first, at);
    last = Math.max(last, at);
    const dt = (deltas[i + 1] ?? 0) / 1000;
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + dt);
  }
  const fn = new Map<string, number>();
  const cat = new Map<string, number>();
  let busy = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const name = `${functionName || '(anonymous)'} ${base(url)}${url ? `:${lineNumber + 1}` : ''}`;
    fn.set(name, (fn.get(name) ?? 0) + ms);
    const c = categoryOf(functionName, url);
    cat.set(c, (cat.get(c) ?? 0) + ms);
    if (c !== 'idle') busy += ms;
  }
  const sorted = (m: Map<string, number>): FunctionTime[] => [...m].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms);
  const wallMs = window ? (last > first ? (last - first) / 1000 : 0) : (p.endTime - p.startTime) / 1000;
  return { wallMs, busyMs: busy, byFunction: sorted(fn), byCategory: sorted(cat) };
}

export function printSummary(label: string, s: ProfileSummary, top = 25): void {
  const pct = (ms: number): string => `${((100 * ms) / s.busyMs).toFixed(1).padStart(5)} %`;
  console.log(`\n== ${label}: ${s.wallMs.toFixed(0)} ms sampled, ${s.busyMs.toFixed(0)} ms busy (${((100 * s.busyMs) / s.wallMs).toFixed(0)} %)`);
  console.log('  by category (share of busy time):');
  for (const c of s.byCategory) if (c.name !== 'idle') console.log(`    ${pct(c.ms)}  ${c.ms.toFixed(0).padStart(6)} ms  ${c.name}`);
  console.log(`  top ${top} functions by self time:`);
  for (const f of s.byFunction.filter((x) => x.name !== '(idle) ').slice(0, top)) console.log(`    ${pct(f.ms)}  ${f.ms.toFixed(0).padStart(6)} ms  ${f.name}`);
}

function summariseFiles(args: string[]): void {
  const w = args.indexOf('--window');
  const window = w >= 0 ? { fromUs: Number(args[w + 1]), toUs: Number(args[w + 2]) } : undefined;
  if (window && !(window.fromUs < window.toUs)) throw new Error('--window FROM_US TO_US: two times in microseconds, the first the earlier');
  const files = w >= 0 ? [...args.slice(0, w), ...args.slice(w + 3)] : args;
  for (const f of files)
    printSummary(
      window ? `${f} (window of ${((window.toUs - window.fromUs) / 1e6).toFixed(1)} s)` : f,
      summarise(JSON.parse(readFileSync(f, 'utf8')) as Profile, window),
    );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--summarise') return summariseFiles(args.slice(1));
  const opt = (name: string, dflt: number): number => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
  const keep = args.includes('--keep') ? args[args.indexOf('--keep') + 1]! : null;
  const seconds = opt('--seconds', 8);
  const streams = opt('--streams', 1);
  const dir = keep ?? mkdtempSync(join(tmpdir(), 'meshctl-prof-'));
  mkdirSync(dir, { recursive: true });
  // each engine writes one profile per thread (main and workers) when it exits on SIGTERM
  if (!args.includes('--no-prof')) process.env.MESHCTL_TEST_NODE_ARGS = `${process.env.MESHCTL_TEST_NODE_ARGS ?? ''} --cpu-prof --cpu-prof-dir=${dir}`.trim();
  const { setupPair } = await import('./wg-pair.js');
  const { must } = await import('../test/helpers/netns.js');
  const s = await setupPair('meshctl');
  const pidA = s.a!.proc.pid!;
  const pidB = s.b!.proc.pid!;
  try {
    const server = s.lab.spawn(s.nsB, ['iperf3', '-s', '-1']);
    await new Promise((r) => setTimeout(r, 300));
    const m0 = machineCpuTicks();
    const t0 = [threadCpu(pidA), threadCpu(pidB)];
    const out = await must('ip', ['netns', 'exec', s.nsA, 'iperf3', '-c', s.target, '-t', String(seconds), '-P', String(streams), '-J'], (seconds + 30) * 1000);
    const t1 = [threadCpu(pidA), threadCpu(pidB)];
    const m1 = machineCpuTicks();
    server.kill();
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
    const bytes = j.end.sum_received.bytes;
    console.log(`TCP ${streams} stream(s): ${(j.end.sum_received.bits_per_second / 1e6).toFixed(0)} Mbit/s, ${(bytes / 1e9).toFixed(2)} GB`);
    console.log(
      `machine: ${((100 * (m1.busy - m0.busy)) / (m1.total - m0.total)).toFixed(0)} % of ${cpus().length} CPUs busy, ${(busySecondsBetween(m0, m1) / (bytes / 1e9)).toFixed(2)} CPU s/GB`,
    );
    for (const [i, side] of ['sender', 'receiver'].entries()) {
      const parts = [...t1[i]!].map(([tid, sec]) => ({ tid, sec: sec - (t0[i]!.get(tid) ?? 0) })).filter((x) => x.sec > 0.005);
      const main = [pidA, pidB][i]!;
      parts.sort((a, b) => (a.tid === main ? -1 : b.tid === main ? 1 : b.sec - a.sec));
      const total = parts.reduce((n, x) => n + x.sec, 0);
      console.log(
        `${side}: ${total.toFixed(2)} CPU s (${(total / (bytes / 1e9)).toFixed(2)} s/GB); threads: ${parts.map((x) => `${x.tid === main ? 'main' : x.tid} ${x.sec.toFixed(2)}`).join(', ')}`,
      );
    }
  } finally {
    await s.lab.cleanup();
  }
  for (let i = 0; i < 50 && readdirSync(dir).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(a).size - statSync(b).size);
  for (const f of files) {
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread
    const m = /\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(f);
    const side = m && Number(m[1]) === pidA ? 'sender' : 'receiver';
    printSummary(`${side} pid ${m?.[1]} thread ${m?.[2]} (${base(f)})`, summarise(JSON.parse(readFileSync(f, 'utf8')) as Profile));
  }
  if (!keep) rmSync(dir, { recursive: true, force: true });
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
