// `npm run bench` (root): throughput and latency of meshctl's engine against
// wireguard-go on this machine, interleaved (A B A B …) in one run so both see
// the same conditions; medians and the ratio are printed and saved as JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, must } from '../test/helpers/netns.js';
import { addPeer, startPeer, type WgKind } from '../test/helpers/wg-peer.js';
import { packageRoot } from '../src/cli/version.js';

const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1] || 0) || 2;
const SECONDS = Number(args[args.indexOf('--seconds') + 1] || 0) || 10;
const PORT = 51820;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};

interface Setup {
  lab: Lab;
  nsA: string;
  nsB: string;
  target: string;
}

async function setup(kind: WgKind | 'veth'): Promise<Setup> {
  const lab = new Lab();
  const nsA = await lab.netns('a');
  const nsB = await lab.netns('b');
  await lab.link(nsA, '10.77.0.1/24', nsB, '10.77.0.2/24');
  if (kind === 'veth') return { lab, nsA, nsB, target: '10.77.0.2' };
  const a = await startPeer(lab, kind, nsA, { port: PORT, inner4: '10.78.0.1/24', inner6: 'fd78::1/64' });
  const b = await startPeer(lab, kind, nsB, { port: PORT, inner4: '10.78.0.2/24', inner6: 'fd78::2/64' });
  await addPeer(lab, a, b, '10.78.0.2/32', `10.77.0.2:${PORT}`);
  await addPeer(lab, b, a, '10.78.0.1/32', `10.77.0.1:${PORT}`);
  await lab.exec(nsA, ['ping', '-c', '1', '-W', '2', '10.78.0.2']);
  return { lab, nsA, nsB, target: '10.78.0.2' };
}

async function iperf(s: Setup): Promise<number> {
  const server = s.lab.spawn(s.nsB, ['iperf3', '-s', '-1']);
  await new Promise((r) => setTimeout(r, 300));
  const out = await must('ip', ['netns', 'exec', s.nsA, 'iperf3', '-c', s.target, '-t', String(SECONDS), '-J'], (SECONDS + 20) * 1000);
  server.kill();
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e6;
}

async function pingRtt(s: Setup): Promise<{ median: number; p99: number }> {
  const all = await must('ip', ['netns', 'exec', s.nsA, 'ping', '-c', '100', '-i', '0.01', s.target], 30_000);
  const rtts = [...all.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const sorted = rtts.sort((a, b) => a - b);
  return { median: median(sorted), p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]! };
}

async function measure(kind: WgKind | 'veth'): Promise<{ mbps: number; rtt: { median: number; p99: number } }> {
  const s = await setup(kind);
  try {
    const rtt = await pingRtt(s);
    const mbps = await iperf(s);
    return { mbps, rtt };
  } finally {
    await s.lab.cleanup();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('npm run bench needs root (network namespaces, TUN): run it with sudo');
    process.exit(1);
  }
  const results: Record<string, { mbps: number[]; rttMedian: number[]; rttP99: number[] }> = {};
  const kinds: (WgKind | 'veth')[] = ['meshctl', 'wireguard-go'];
  const record = (k: string, r: { mbps: number; rtt: { median: number; p99: number } }): void => {
    results[k] ??= { mbps: [], rttMedian: [], rttP99: [] };
    results[k].mbps.push(r.mbps);
    results[k].rttMedian.push(r.rtt.median);
    results[k].rttP99.push(r.rtt.p99);
    console.error(`  ${k.padEnd(13)} ${r.mbps.toFixed(0).padStart(6)} Mbit/s  rtt ${r.rtt.median.toFixed(3)} ms (p99 ${r.rtt.p99.toFixed(3)})`);
  };
  console.error(`bench: iperf3 TCP 1 stream ${SECONDS}s, ${RUNS} interleaved runs each, MTU 1420 tunnels over one veth`);
  record('veth', await measure('veth'));
  for (let i = 0; i < RUNS; i++) for (const k of kinds) record(k, await measure(k));
  const row = (k: string) => ({ mbps: median(results[k]!.mbps), rttMedian: median(results[k]!.rttMedian), rttP99: median(results[k]!.rttP99) });
  const mc = row('meshctl');
  const wg = row('wireguard-go');
  const veth = row('veth');
  const summary = {
    date: new Date().toISOString(),
    node: process.version,
    runs: RUNS,
    seconds: SECONDS,
    meshctl: mc,
    wireguardGo: wg,
    veth,
    ratio: mc.mbps / wg.mbps,
    addedRttMs: { meshctl: mc.rttMedian - veth.rttMedian, wireguardGo: wg.rttMedian - veth.rttMedian },
    raw: results,
  };
  console.log('');
  console.log('path'.padEnd(28), 'Mbit/s (median)'.padStart(16), 'RTT ms median'.padStart(14), 'RTT p99'.padStart(9));
  for (const [name, r] of [['meshctl ↔ meshctl', mc], ['wireguard-go ↔ wireguard-go', wg], ['bare veth', veth]] as const) {
    console.log(name.padEnd(28), r.mbps.toFixed(0).padStart(16), r.rttMedian.toFixed(3).padStart(14), r.rttP99.toFixed(3).padStart(9));
  }
  console.log(`ratio meshctl / wireguard-go throughput: ${summary.ratio.toFixed(2)}`);
  console.log(`added RTT over bare veth: meshctl ${summary.addedRttMs.meshctl.toFixed(3)} ms, wireguard-go ${summary.addedRttMs.wireguardGo.toFixed(3)} ms`);
  const dir = join(packageRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${summary.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(summary, null, 2) + '\n');
  console.log(`saved ${file}`);
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exit(1);
});
