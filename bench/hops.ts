// Where one ping's time goes, hop by hop (`npm run bench -- --hops`): the
// kernel's own tracepoints (ftrace: net_dev_queue / netif_receive_skb on the
// TUN and veth devices, sched_wakeup, and the engines' system calls) while a
// pair is pinged every 10 ms. Device timestamps need no instrumentation in
// either implementation, so meshctl and wireguard-go are timed the same way;
// for meshctl it also shows how long each engine runs between the system call
// that brings a packet in and the one that sends it on (our code, cold).
// For both it counts resume stalls: an engine thread switched in after a
// blocking call takes over 300 µs to make its next call (docs/performance.md,
// "Latency": on this guest, likely time the guest cannot see).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { must } from '../test/helpers/netns.js';
import { median, percentile } from './procstat.js';
import { pings, setupPair, type PairEngine, type PairSetup } from './wg-pair.js';

const TRACEFS = '/sys/kernel/tracing';
const EVENTS = ['sched/sched_wakeup', 'sched/sched_switch', 'net/net_dev_queue', 'net/netif_receive_skb'];
const STALL_US = 300;
const SYSCALLS = ['raw_syscalls/sys_enter', 'raw_syscalls/sys_exit'];
// x86_64 numbers of the calls meshctl's idle path makes (others are not timed)
const NR = { read: 0, recvmsg: 47, writev: 20, sendmmsg: 307, epollPwait: 281 };

export interface HopResult {
  /** medians per cycle, µs: ping's request on TUN A → A sends on the veth, and so on round the loop */
  aSend: number;
  bReceive: number;
  bSend: number;
  aReceive: number;
  total: number;
  totalP90: number;
  totalP99: number;
  /** meshctl only: user time of A's first hop (read → sendmmsg) and B's (recvmsg → writev) */
  aSendUser: number | null;
  bReceiveUser: number | null;
  /**
   * meshctl only, p99 of A's time from epoll_pwait's return to its TUN read: normally
   * ~30 µs, but a few % of wake-ups stall here for ~500 µs with nothing else running
   * (docs/performance.md, "Latency")
   */
  aWakeToReadP99: number | null;
  /**
   * Where the kernel woke the receiving engine (B for the request, A for the
   * reply) after its datagram arrived: on the CPU that took the datagram, or
   * on the other one while it sat idle (a halted vCPU here takes 70–120 µs to
   * wake, docs/performance.md, "Method"). Share of the latter, and the
   * median µs from the datagram's arrival to each kind of wake-up.
   */
  wakeOntoIdlePct: number;
  wakeSameCpuUs: number | null;
  wakeIdleCpuUs: number | null;
  /**
   * The request's first wake-up: of A's engine thread by ping's write to TUN A.
   * The share that went to a CPU other than the one ping sent from (which then
   * has to be woken, or freed, first), and the median µs from the packet on
   * TUN A to that wake-up.
   * wireguard-go reads the TUN on its own thread, so it follows ping; meshctl's
   * one event loop also takes the peer's replies and can sit on the other
   * CPU (docs/performance.md, "Latency").
   */
  aWakeOtherCpuPct: number;
  aWakeUs: number | null;
  /**
   * Each time an engine thread is switched in and its blocking call returns:
   * µs until its next system call (p99), and how many of them per 1,000 took
   * over STALL_US. Both engines' threads; wireguard-go has more, shorter ones.
   */
  resumeP99: number | null;
  resumeStallsPerK: number | null;
  cycles: number;
}

export interface Ev {
  us: number;
  pid: number;
  cpu: number;
  name: string;
  rest: string;
}

const w = (f: string, v: string): void => writeFileSync(`${TRACEFS}/${f}`, v);
const tids = (pid: number): number[] => readdirSync(`/proc/${pid}/task`).map(Number);

async function ensureTracefs(): Promise<void> {
  if (!existsSync(`${TRACEFS}/trace`)) await must('mount', ['-t', 'tracefs', 'nodev', TRACEFS]);
}

export function parse(text: string): Ev[] {
  const out: Ev[] = [];
  const re = /^\s*.+?-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): (.*)$/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m) out.push({ pid: Number(m[1]), cpu: Number(m[2]), us: Number(m[3]) * 1e6, name: m[4]!, rest: m[5]! });
  }
  return out;
}

const devOf = (e: Ev): string | undefined => /dev=(\S+)/.exec(e.rest)?.[1];

interface Wake {
  idle: boolean;
  us: number;
}

/**
 * For each datagram arriving on `dev` (a WireGuard-sized one), the first
 * wake-up of one of `tids` after it: onto the arrival's own CPU, or onto
 * another CPU from its idle task (the wake-up then runs there, after an IPI).
 */
function wakeups(evs: Ev[], dev: string, tids: Set<number>): Wake[] {
  const out: Wake[] = [];
  for (let i = 0; i < evs.length; i++) {
    const rx = evs[i]!;
    if (rx.name !== 'netif_receive_skb' || devOf(rx) !== dev || !/len=(1[2-9]\d|[2-9]\d\d|1\d{3})\b/.test(rx.rest)) continue;
    for (let j = i + 1; j < evs.length && evs[j]!.us - rx.us < 5000; j++) {
      const e = evs[j]!;
      const target = e.name === 'sched_wakeup' ? /pid=(\d+) .*target_cpu=(\d+)/.exec(e.rest) : null;
      if (!target || !tids.has(Number(target[1]))) continue;
      const onOther = Number(target[2]) !== rx.cpu;
      if (onOther && e.pid !== 0) break; // woken directly on a busy CPU: neither kind
      out.push({ idle: onOther, us: e.us - rx.us });
      break;
    }
  }
  return out;
}

export interface RequestWake {
  otherCpu: boolean;
  us: number;
}

/** For each cycle: the first wake-up of one of `tids` after the ping's packet on TUN A, and whether it went to another CPU. */
export function requestWakeups(evs: Ev[], starts: number[], tids: Set<number>): RequestWake[] {
  const out: RequestWake[] = [];
  for (const i0 of starts) {
    const q = evs[i0]!;
    for (let j = i0 + 1; j < evs.length && evs[j]!.us - q.us < 5000; j++) {
      const e = evs[j]!;
      const target = e.name === 'sched_wakeup' ? /pid=(\d+) .*target_cpu=(\d+)/.exec(e.rest) : null;
      if (!target || !tids.has(Number(target[1]))) continue;
      out.push({ otherCpu: Number(target[2]) !== q.cpu, us: e.us - q.us });
      break;
    }
  }
  return out;
}

/** User time of one engine between a system call's exit and the next given call's entry, within a cycle. */
function userSpan(evs: Ev[], tidSet: Set<number>, exitNr: number, enterNr: number): number | null {
  let t0: number | null = null;
  for (const e of evs) {
    if (!tidSet.has(e.pid)) continue;
    // a read that found nothing (-EAGAIN) and an epoll_pwait that timed out (= 0) start nothing
    if (e.name === 'sys_exit' && t0 === null && e.rest.startsWith(`NR ${exitNr} `) && !e.rest.endsWith('= -11') && !e.rest.endsWith('= 0')) t0 = e.us;
    else if (e.name === 'sys_enter' && t0 !== null && e.rest.startsWith(`NR ${enterNr} `)) return e.us - t0;
  }
  return null;
}

/** For every switch-in of one of `tids`: µs from the return of the call it was blocked in to its next call. */
function resumeGaps(evs: Ev[], tids: Set<number>): number[] {
  const out: number[] = [];
  // 0: switched in, waiting for the blocking call's return; a number: that return's time
  const state = new Map<number, number>();
  for (const e of evs) {
    if (e.name === 'sched_switch') {
      const next = Number(/next_pid=(\d+)/.exec(e.rest)?.[1]);
      if (tids.has(next)) state.set(next, 0);
      continue;
    }
    const st = state.get(e.pid);
    if (st === undefined) continue;
    if (e.name === 'sys_exit' && st === 0) state.set(e.pid, e.us);
    else if (e.name === 'sys_enter' && st > 0) {
      out.push(e.us - st);
      state.delete(e.pid);
    }
  }
  return out;
}

function analyse(evs: Ev[], s: PairSetup, tidsA: Set<number>, tidsB: Set<number>, meshctl: boolean): HopResult {
  const [tunA, tunB] = [s.a!.ifname, s.b!.ifname];
  type Cycle = { q: number; vA?: number; rB?: number; qB?: number; vB?: number; rA?: number; i0: number; i1?: number };
  const cycles: Cycle[] = [];
  let cur: Cycle | null = null;
  evs.forEach((e, i) => {
    const d = devOf(e);
    if (e.name === 'net_dev_queue' && d === tunA && e.rest.includes('len=84')) {
      cycles.push((cur = { q: e.us, i0: i }));
      return;
    }
    if (!cur) return;
    if (e.name === 'net_dev_queue' && d === s.vethA && cur.vA === undefined) cur.vA = e.us;
    else if (e.name === 'netif_receive_skb' && d === tunB && cur.rB === undefined) cur.rB = e.us;
    else if (e.name === 'net_dev_queue' && d === tunB && cur.qB === undefined) cur.qB = e.us;
    else if (e.name === 'net_dev_queue' && d === s.vethB && cur.qB !== undefined && cur.vB === undefined) cur.vB = e.us;
    else if (e.name === 'netif_receive_skb' && d === tunA && cur.vB !== undefined && cur.rA === undefined) {
      cur.rA = e.us;
      cur.i1 = i;
    }
  });
  const full = cycles.filter((c) => c.rA !== undefined && c.vA !== undefined && c.rB !== undefined);
  const m = (f: (c: Cycle) => number): number => median(full.map(f));
  const spanValues = (tidSet: Set<number>, a: number, b: number): number[] =>
    meshctl ? full.map((c) => userSpan(evs.slice(c.i0, c.i1! + 1), tidSet, a, b)).filter((x): x is number => x !== null) : [];
  const spans = (tidSet: Set<number>, a: number, b: number): number | null => {
    const v = spanValues(tidSet, a, b);
    return v.length ? median(v) : null;
  };
  const wakeToRead = spanValues(tidsA, NR.epollPwait, NR.read);
  const wakes = [...wakeups(evs, s.vethB, tidsB), ...wakeups(evs, s.vethA, tidsA)];
  const kind = (idle: boolean): number | null => {
    const v = wakes.filter((x) => x.idle === idle).map((x) => x.us);
    return v.length ? median(v) : null;
  };
  const totals = full.map((c) => c.rA! - c.q);
  const reqWakes = requestWakeups(
    evs,
    full.map((c) => c.i0),
    tidsA,
  );
  const gaps = resumeGaps(evs, new Set([...tidsA, ...tidsB]));
  return {
    aSend: m((c) => c.vA! - c.q),
    bReceive: m((c) => c.rB! - c.vA!),
    bSend: m((c) => c.vB! - c.qB!),
    aReceive: m((c) => c.rA! - c.vB!),
    total: median(totals),
    totalP90: percentile(totals, 0.9),
    totalP99: percentile(totals, 0.99),
    aSendUser: spans(tidsA, NR.read, NR.sendmmsg),
    bReceiveUser: spans(tidsB, NR.recvmsg, NR.writev),
    aWakeToReadP99: wakeToRead.length ? percentile(wakeToRead, 0.99) : null,
    wakeOntoIdlePct: wakes.length ? (100 * wakes.filter((x) => x.idle).length) / wakes.length : 0,
    wakeSameCpuUs: kind(false),
    wakeIdleCpuUs: kind(true),
    aWakeOtherCpuPct: reqWakes.length ? (100 * reqWakes.filter((x) => x.otherCpu).length) / reqWakes.length : 0,
    aWakeUs: reqWakes.length ? median(reqWakes.map((x) => x.us)) : null,
    resumeP99: gaps.length ? percentile(gaps, 0.99) : null,
    resumeStallsPerK: gaps.length ? (1000 * gaps.filter((g) => g > STALL_US).length) / gaps.length : null,
    cycles: full.length,
  };
}

/** One pair: `warm` unmeasured pings, then `count` traced ones at 10 ms. */
export async function measureHops(engine: Exclude<PairEngine, 'veth'>, warm: number, count: number): Promise<HopResult> {
  if (process.arch !== 'x64') throw new Error('--hops reads x86_64 system call numbers: run it on x86_64');
  await ensureTracefs();
  const kind = typeof engine === 'string' ? engine : engine.kind;
  const s = await setupPair(engine);
  try {
    if (warm > 0) await pings(s, warm, '0.01');
    const [tidsA, tidsB] = [new Set(tids(s.a!.proc.pid!)), new Set(tids(s.b!.proc.pid!))];
    w('tracing_on', '0');
    w('trace', '');
    w('buffer_size_kb', '40000');
    w('set_event', '');
    for (const e of EVENTS) w(`events/${e}/enable`, '1');
    const filter = [...tidsA, ...tidsB].map((t) => `common_pid == ${t}`).join(' || ');
    for (const e of SYSCALLS) {
      w(`events/${e}/filter`, filter);
      w(`events/${e}/enable`, '1');
    }
    w('tracing_on', '1');
    await pings(s, count, '0.01');
    w('tracing_on', '0');
    return analyse(parse(readFileSync(`${TRACEFS}/trace`, 'utf8')), s, tidsA, tidsB, kind === 'meshctl');
  } finally {
    w('tracing_on', '0');
    w('set_event', '');
    for (const e of SYSCALLS) w(`events/${e}/filter`, '0');
    w('trace', '');
    await s.lab.cleanup();
  }
}
