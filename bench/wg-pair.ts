// meshctl's engine against wireguard-go builds, each as a pair over one veth
// (MTU 1420 tunnels, configured with `wg`): TCP 1 and 4 streams, UDP 1400-byte
// datagrams, ping RTT, CPU seconds per GB and peak RSS of the sender.
import { Lab, must } from '../test/helpers/netns.js';
import { addPeer, startPeer, type WgKind, type WgPeer } from '../test/helpers/wg-peer.js';
import type { BenchEngine } from './engines.js';
import { offloadsIn } from './offloads.js';
import { busySecondsBetween, cpuSeconds, machineCpuTicks, median, peakRssMb, percentile } from './procstat.js';

const PORT = 51820;

export interface PairResult {
  tcp1Mbps: number;
  tcp4Mbps: number;
  udpMbps: number;
  udpLossPct: number;
  /** the first 200 pings of a fresh pair */
  rttMedianMs: number;
  rttP99Ms: number;
  /** 200 pings after 1,000 more (at 2 ms): the pair in steady state */
  rttWarmMedianMs: number;
  rttWarmP99Ms: number;
  /** CPU seconds of the two engine processes (user + system, /proc/PID/stat) per GB of the 1-stream TCP test */
  cpuSecPerGb: number | null;
  /**
   * Busy CPU seconds of the whole machine (/proc/stat: user, nice, system, irq, softirq on every CPU) per GB of the
   * same test: the kernel's receive work runs in softirq, often outside both engines. Includes iperf3 and anything
   * else running. Absent from results of builds before it was measured.
   */
  machineCpuSecPerGb?: number | null;
  peakRssMb: number | null;
  /** with `{ offloads: true }`: the TUN offloads of engine A as `ethtool -k` names them */
  tunOffloads?: string;
}

/** What a pair runs: an engine of the bench, a kind with its default binary, or the bare veth. */
export type PairEngine = BenchEngine | WgKind | 'veth';

export interface PairSetup {
  lab: Lab;
  nsA: string;
  nsB: string;
  vethA: string;
  vethB: string;
  target: string;
  a: WgPeer | null;
  b: WgPeer | null;
}

export async function setupPair(engine: PairEngine): Promise<PairSetup> {
  const lab = new Lab();
  const nsA = await lab.netns('a');
  const nsB = await lab.netns('b');
  const [vethA, vethB] = await lab.link(nsA, '10.77.0.1/24', nsB, '10.77.0.2/24');
  if (engine === 'veth') return { lab, nsA, nsB, vethA, vethB, target: '10.77.0.2', a: null, b: null };
  const kind = typeof engine === 'string' ? engine : engine.kind;
  const binary = typeof engine === 'string' ? undefined : engine.binary;
  const a = await startPeer(lab, kind, nsA, { port: PORT, inner4: '10.78.0.1/24', inner6: 'fd78::1/64', binary });
  const b = await startPeer(lab, kind, nsB, { port: PORT, inner4: '10.78.0.2/24', inner6: 'fd78::2/64', binary });
  await addPeer(lab, a, b, '10.78.0.2/32', `10.77.0.2:${PORT}`);
  await addPeer(lab, b, a, '10.78.0.1/32', `10.77.0.1:${PORT}`);
  await lab.exec(nsA, ['ping', '-c', '1', '-W', '2', '10.78.0.2']);
  return { lab, nsA, nsB, vethA, vethB, target: '10.78.0.2', a, b };
}

export interface IperfResult {
  mbps: number;
  lossPct: number;
  bytes: number;
}

/**
 * The figures of one `iperf3 -c … -J` run. The receiver's sum when there is one (TCP; UDP since iperf3 3.9, which
 * reports both sides): what arrived, and for UDP the real loss. Older UDP output has only the sender's sum.
 */
export function parseIperfJson(text: string): IperfResult {
  const j = JSON.parse(text) as {
    end?: {
      sum_received?: { bits_per_second: number; bytes: number; lost_percent?: number };
      sum?: { bits_per_second: number; lost_percent?: number; bytes: number };
    };
  };
  const rx = j.end?.sum_received;
  if (rx) return { mbps: rx.bits_per_second / 1e6, lossPct: rx.lost_percent ?? 0, bytes: rx.bytes };
  const sum = j.end?.sum;
  if (!sum) throw new Error('iperf3 -J: no end.sum_received or end.sum in its output');
  const loss = sum.lost_percent ?? 0;
  return { mbps: (sum.bits_per_second * (1 - loss / 100)) / 1e6, lossPct: loss, bytes: sum.bytes };
}

async function iperf(s: PairSetup, seconds: number, extra: string[]): Promise<IperfResult> {
  const server = s.lab.spawn(s.nsB, ['iperf3', '-s', '-1']);
  await new Promise((r) => setTimeout(r, 300));
  try {
    return parseIperfJson(await must('ip', ['netns', 'exec', s.nsA, 'iperf3', '-c', s.target, '-t', String(seconds), '-J', ...extra], (seconds + 30) * 1000));
  } finally {
    server.kill();
  }
}

export interface RttResult {
  median: number;
  p99: number;
  warmMedian: number;
  warmP99: number;
}

export async function pings(s: PairSetup, count: number, interval: string): Promise<number[]> {
  const all = await must('ip', ['netns', 'exec', s.nsA, 'ping', '-c', String(count), '-i', interval, s.target], 60_000);
  return [...all.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

/**
 * 200 pings at 10 ms on the fresh pair, then again after 1,000 unmeasured pings:
 * a JIT-compiled engine reaches its optimised code only after its per-packet
 * functions have run a while (docs/performance.md), so both are reported.
 */
async function pingRtt(s: PairSetup): Promise<RttResult> {
  const fresh = await pings(s, 200, '0.01');
  await pings(s, 1000, '0.002');
  const warm = await pings(s, 200, '0.01');
  return { median: median(fresh), p99: percentile(fresh, 0.99), warmMedian: median(warm), warmP99: percentile(warm, 0.99) };
}

/** RTT alone (`--rtt-only`): a fresh pair, then the same pair warmed up. */
export async function measureRtt(engine: PairEngine): Promise<RttResult> {
  const s = await setupPair(engine);
  try {
    return await pingRtt(s);
  } finally {
    await s.lab.cleanup();
  }
}

export async function measurePair(engine: PairEngine, seconds: number, opts: { offloads?: boolean } = {}): Promise<PairResult> {
  const s = await setupPair(engine);
  try {
    const tunOffloads = opts.offloads && s.a ? await offloadsIn(s.nsA, s.a.ifname) : undefined;
    const rtt = await pingRtt(s);
    const pids = [s.a?.proc.pid, s.b?.proc.pid].filter((p): p is number => typeof p === 'number');
    const cpu0 = pids.reduce((n, p) => n + cpuSeconds(p), 0);
    const machine0 = machineCpuTicks();
    const t1 = await iperf(s, seconds, []);
    const machine1 = machineCpuTicks();
    const cpu1 = pids.reduce((n, p) => n + cpuSeconds(p), 0);
    const peak = s.a?.proc.pid ? peakRssMb(s.a.proc.pid) : null;
    const t4 = await iperf(s, seconds, ['-P', '4']);
    // UDP: offer more than either can carry; what arrives is the throughput
    const u = await iperf(s, seconds, ['-u', '-l', '1400', '-b', '2G']);
    return {
      tcp1Mbps: t1.mbps,
      tcp4Mbps: t4.mbps,
      udpMbps: u.mbps,
      udpLossPct: u.lossPct,
      rttMedianMs: rtt.median,
      rttP99Ms: rtt.p99,
      rttWarmMedianMs: rtt.warmMedian,
      rttWarmP99Ms: rtt.warmP99,
      cpuSecPerGb: pids.length ? (cpu1 - cpu0) / (t1.bytes / 1e9) : null,
      machineCpuSecPerGb: busySecondsBetween(machine0, machine1) / (t1.bytes / 1e9),
      peakRssMb: peak,
      ...(tunOffloads === undefined ? {} : { tunOffloads }),
    };
  } finally {
    await s.lab.cleanup();
  }
}
