// `npm run bench` (root): the one place speed and memory are measured.
// meshctl's engine, upstream wireguard-go (the reference, with offloads;
// `--reference PATH`) and Debian's wireguard-go (`--debian PATH`) run as pairs
// over one veth, interleaved (A B C A B C …, --runs each) so all see the same
// machine, with every ratio against the reference; then the whole system
// on a LAN of namespaces (up-to-ping, RSS, CLI latency, relay vs direct) and in
// the lab (up to the first direct path behind NATs), and the resolver (mesh and
// forwarded names against the upstream, RSS with 1000 names; `--dns-only` runs
// it alone and needs no root; `--relay-only` the relayed path alone, direct then relayed in --runs fresh
// labs, `--cpu-prof DIR` adding profiles of the relay and both daemons, `--relay-shape 5,50` runs on a
// relay link shaped to those Mbit/s). Medians and ratios are printed and saved as JSON
// under bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/cli/version.js';
import { measureLabDirect } from './lab-direct.js';
import { RETIRE_AFTER_MS } from '../src/util/reader-mode.js';
import { IDLE_SETTLE_MS, measureMesh, type MeshResult } from './mesh.js';
import { median } from './procstat.js';
import { measurePair, measureRtt, type PairResult, type RttResult } from './wg-pair.js';
import { DEBIAN_DEFAULT_PATH, findEngines, UPSTREAM_DEFAULT_PATH, type BenchEngine } from './engines.js';
import { formatGoals, pairGoals } from './goals.js';
import { measureHops, type HopResult } from './hops.js';
import { keepCpusAwake } from './cpus-awake.js';
import { measureDns, printDns } from './dns.js';
import { requireTool, ToolMissingError } from '../src/util/tools.js';
import { measureRelayPath, relayCeiling, type RelayPathResult } from './relay-path.js';
import { relayShortIdsWanted } from '../src/util/knobs.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const optPath = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const RUNS = opt('--runs', 3);
const SECONDS = opt('--seconds', 10);
const CPUS_AWAKE = args.includes('--cpus-awake');
const ONLY = args.includes('--pairs-only')
  ? 'pairs'
  : args.includes('--system-only')
    ? 'system'
    : args.includes('--rtt-only')
      ? 'rtt'
      : args.includes('--hops')
        ? 'hops'
        : args.includes('--dns-only')
          ? 'dns'
          : args.includes('--relay-only')
            ? 'relay'
            : 'all';

type Key = keyof PairResult;
const KEYS: Key[] = [
  'tcp1Mbps',
  'tcp4Mbps',
  'udpMbps',
  'udpLossPct',
  'rttMedianMs',
  'rttP99Ms',
  'rttWarmMedianMs',
  'rttWarmP99Ms',
  'machineCpuSecPerGb',
  'cpuSecPerGb',
  'peakRssMb',
];
type Summary = Record<Exclude<Key, 'tunOffloads'>, number>;

function summarize(rs: PairResult[]): Summary {
  return Object.fromEntries(KEYS.map((k) => [k, median(rs.map((r) => (r[k] as number | null | undefined) ?? NaN))])) as Summary;
}

const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

async function main(): Promise<void> {
  if (process.getuid?.() !== 0 && ONLY !== 'dns') {
    console.error('npm run bench needs root (network namespaces, TUN): run it with sudo');
    process.exit(1);
  }
  if (ONLY !== 'dns') {
    // the pairs and the system run these; a missing one is named with its package here, not as a spawn error later
    try {
      for (const tool of ['ip', 'wg', 'iperf3', 'ping', 'nft']) requireTool(tool);
    } catch (e) {
      if (!(e instanceof ToolMissingError)) throw e;
      console.error(`npm run bench: ${e.message}`);
      process.exit(1);
    }
  }
  if (CPUS_AWAKE && ONLY !== 'rtt') {
    console.error('--cpus-awake is a diagnostic of the RTT measurement: use it with --rtt-only');
    process.exit(2);
  }
  const out: Record<string, unknown> = { date: new Date().toISOString(), node: process.version, runs: RUNS, seconds: SECONDS };
  const found = findEngines(optPath('--reference', UPSTREAM_DEFAULT_PATH), optPath('--debian', DEBIAN_DEFAULT_PATH));
  const engines: BenchEngine[] = found.engines;
  if (ONLY !== 'system' && ONLY !== 'dns') {
    for (const line of found.header) console.log(line);
    if (!found.upstream && process.env.CI) {
      console.error('CI: the reference binary is required; see above for how to build it');
      process.exit(1);
    }
    out.references = { upstream: found.upstream, debian: found.debian };
  }
  const wgs = engines.filter((e) => e.id !== 'meshctl');
  if (ONLY === 'rtt') {
    // latency work: many short interleaved runs are cheaper than the full pairs and show the spread
    const raw: Record<string, RttResult[]> = { veth: [], ...Object.fromEntries(engines.map((e) => [e.id, []])) };
    // a diagnostic, not the goal's figure: no vCPU halts, so no wake-up pays for waking one
    const spinners = CPUS_AWAKE ? keepCpusAwake() : null;
    if (CPUS_AWAKE) console.error('--cpus-awake: every CPU kept busy by a SCHED_IDLE spinner (diagnostic; the goal is judged without it)');
    raw.veth!.push(await measureRtt('veth'));
    for (let i = 0; i < RUNS; i++) {
      for (const e of engines) {
        const r = await measureRtt(e);
        raw[e.id]!.push(r);
        console.error(`  ${e.id.padEnd(13)} rtt median ${f(r.median, 3)} ms, p99 ${f(r.p99, 3)} ms; warm ${f(r.warmMedian, 3)} ms, p99 ${f(r.warmP99, 3)} ms`);
      }
    }
    spinners?.stop();
    const med = (k: string, key: keyof RttResult): number => median(raw[k]!.map((r) => r[key]));
    const veth = med('veth', 'median');
    const vethWarm = med('veth', 'warmMedian');
    if (CPUS_AWAKE) console.log('with every CPU kept awake (--cpus-awake, a diagnostic):');
    for (const k of engines.map((e) => e.id)) {
      console.log(
        `${k.padEnd(13)} RTT median ${f(med(k, 'median'), 3)} ms (added ${f(med(k, 'median') - veth, 3)}), p99 ${f(med(k, 'p99'), 3)} ms; ` +
          `warm ${f(med(k, 'warmMedian'), 3)} ms (added ${f(med(k, 'warmMedian') - vethWarm, 3)}), p99 ${f(med(k, 'warmP99'), 3)} ms`,
      );
    }
    Object.assign(out, { rtt: raw, cpusAwake: CPUS_AWAKE });
  }
  if (ONLY === 'hops') {
    // per-hop latency from kernel tracepoints: --warm pings first (0 = a fresh pair), then --count traced (200)
    const warm = opt('--warm', 1000);
    const count = opt('--count', 200);
    const raw: Record<string, HopResult[]> = Object.fromEntries(engines.map((e) => [e.id, []]));
    for (let i = 0; i < RUNS; i++) for (const e of engines) raw[e.id]!.push(await measureHops(e, warm, count));
    const cols: [string, keyof HopResult][] = [
      ['A send', 'aSend'],
      ['B receive', 'bReceive'],
      ['B send', 'bSend'],
      ['A receive', 'aReceive'],
      ['total', 'total'],
      ['total p90', 'totalP90'],
      ['total p99', 'totalP99'],
      ['A send, user', 'aSendUser'],
      ['B recv, user', 'bReceiveUser'],
      ['A wake p99', 'aWakeToReadP99'],
      ['A wake other %', 'aWakeOtherCpuPct'],
      ['A wake µs', 'aWakeUs'],
      ['wakes→idle %', 'wakeOntoIdlePct'],
      ['wake same CPU', 'wakeSameCpuUs'],
      ['wake idle CPU', 'wakeIdleCpuUs'],
      ['resume p99', 'resumeP99'],
      ['stalls/1000', 'resumeStallsPerK'],
    ];
    console.log(`\nper hop, µs (medians of ${RUNS} runs of ${count} pings at 10 ms, after ${warm} pings)`);
    console.log(['', ...cols.map(([h]) => h)].map((h, i) => (i ? h.padStart(15) : h.padEnd(14))).join(''));
    for (const k of engines.map((e) => e.id)) {
      const cells = cols.map(([, key]) => {
        const v = raw[k]!.map((r) => r[key]).filter((x): x is number => x !== null);
        return v.length ? f(median(v)) : '-';
      });
      console.log([k.padEnd(14), ...cells.map((c) => c.padStart(15))].join(''));
    }
    Object.assign(out, { hops: { warm, raw } });
  }
  if (ONLY === 'all' || ONLY === 'pairs') {
    console.error(`pairs: ${RUNS} interleaved runs each, ${SECONDS}s per iperf3 test, MTU 1420 tunnels over one veth`);
    const raw: Record<string, PairResult[]> = { veth: [], ...Object.fromEntries(engines.map((e) => [e.id, []])) };
    const offloads: Record<string, string> = {};
    raw.veth!.push(await measurePair('veth', SECONDS));
    for (let i = 0; i < RUNS; i++) {
      for (const e of engines) {
        // the TUN offloads each engine turned on, read once
        const r = await measurePair(e, SECONDS, { offloads: i === 0 });
        if (r.tunOffloads !== undefined) {
          offloads[e.id] = r.tunOffloads;
          console.log(`${e.label}: TUN offloads ${r.tunOffloads}`);
        }
        raw[e.id]!.push(r);
        console.error(
          `  ${e.id.padEnd(9)} tcp ${f(r.tcp1Mbps)} / 4×tcp ${f(r.tcp4Mbps)} / udp ${f(r.udpMbps)} Mbit/s (loss ${f(r.udpLossPct, 1)} %), ` +
            `rtt ${f(r.rttMedianMs, 3)} ms (warm ${f(r.rttWarmMedianMs, 3)}, p99 ${f(r.rttWarmP99Ms, 3)}), ` +
            `${f(r.machineCpuSecPerGb ?? NaN, 1)} CPU s/GB (engines ${f(r.cpuSecPerGb ?? NaN, 1)}), peak ${f(r.peakRssMb ?? NaN)} MiB`,
        );
      }
    }
    const sum: Record<string, Summary> = Object.fromEntries(Object.entries(raw).map(([k, rs]) => [k, summarize(rs)]));
    const W = 36;
    console.log(
      '\n' +
        ['pair (medians)', 'TCP Mbit/s', '4×TCP', 'UDP Mbit/s', 'UDP loss %', 'RTT ms', 'RTT p99', 'warm RTT', 'warm p99', 'CPU s/GB', 'engines', 'peak MiB']
          .map((h, i) => (i ? h.padStart(11) : h.padEnd(W)))
          .join(''),
    );
    for (const [name, r] of [...engines.map((e) => [e.label, sum[e.id]!] as const), ['bare veth', sum.veth!] as const]) {
      console.log(
        [
          name.padEnd(W),
          f(r.tcp1Mbps),
          f(r.tcp4Mbps),
          f(r.udpMbps),
          f(r.udpLossPct, 1),
          f(r.rttMedianMs, 3),
          f(r.rttP99Ms, 3),
          f(r.rttWarmMedianMs, 3),
          f(r.rttWarmP99Ms, 3),
          f(r.machineCpuSecPerGb, 1),
          f(r.cpuSecPerGb, 1),
          f(r.peakRssMb),
        ]
          .map((c, i) => (i ? c.padStart(11) : c))
          .join(''),
      );
    }
    console.log(
      'CPU s/GB: busy time of the whole machine (/proc/stat: user+nice+system+irq+softirq, all CPUs) per GB of the 1-stream test; ' +
        'engines: the two engine processes alone',
    );
    console.log('over veth, GSO packets reach the peer unsegmented: both engines gain more than on a NIC, so the ratio stays fair');
    const mc = sum.meshctl!;
    const goals: Record<string, ReturnType<typeof pairGoals>> = {};
    for (const e of wgs) {
      goals[e.id] = pairGoals(mc, sum[e.id]!);
      const ref = e.id === 'upstream';
      console.log(formatGoals(goals[e.id]!, ref ? `the reference, ${e.label}` : `${e.label}, for information`, ref).join('\n'));
    }
    if (!found.upstream) console.log('no reference column: the goals are judged against upstream wireguard-go only (see the header)');
    const veth = sum.veth!;
    const added = (k: string, key: 'rttMedianMs' | 'rttWarmMedianMs'): number => sum[k]![key] - veth[key];
    console.log(`added RTT over bare veth, fresh pair: ${engines.map((e) => `${e.id} ${f(added(e.id, 'rttMedianMs'), 3)} ms`).join(', ')}`);
    console.log(
      `added RTT over bare veth, warm pair:  ${engines.map((e) => `${e.id} ${f(added(e.id, 'rttWarmMedianMs'), 3)} ms`).join(', ')} (after 1,000 pings)`,
    );
    Object.assign(out, { pairs: { ...sum, goals, tunOffloads: offloads, raw } });
  }
  if (ONLY === 'all' || ONLY === 'system') {
    console.error('system: control server, relay and two daemons on a LAN of namespaces');
    const m: MeshResult = await measureMesh(SECONDS);
    console.error('lab: two nodes behind easy NATs');
    const l = await measureLabDirect();
    console.log('\nsystem');
    console.log(`  up → first ping (LAN)             ${f(m.upToFirstPingMs)} ms`);
    console.log(`  up → first ping (lab, easy NATs)  ${f(l.upToFirstPingMs)} ms`);
    console.log(`  up → first direct path (lab)      ${f(l.upToDirectMs)} ms`);
    console.log(`  daemon RSS 2 s after up, 1 peer   ${f(m.rssAfterUp1PeerMb, 1)} MiB`);
    console.log(
      `  daemon RSS idle, 1 peer           ${f(m.rssIdle1PeerMb, 1)} MiB = ${f((m.rssIdle1PeerMb * 1048576) / 1e6, 1)} MB (goal ≤ 60; idle = ${IDLE_SETTLE_MS / 1000} s without traffic, ${m.idleReleases1Peer} idle release(s) by then)`,
    );
    const ip = m.idleParts1Peer;
    console.log(
      `  … of which                        anonymous ${f(ip.anonMb, 1)} MiB (V8 heap ${f(ip.v8HeapMb ?? NaN, 1)}), file-backed ${f(ip.fileMb, 1)} MiB (node binary, libraries)`,
    );
    console.log(
      `  daemon RSS idle, 100 peers        ${f(m.rssIdle100PeersMb, 1)} MiB = ${f((m.rssIdle100PeersMb * 1048576) / 1e6, 1)} MB (${f(m.idle100PeersAfterS)} s after the last transfer; reader threads running: TUN ${m.threadsAtIdle100Peers.tun}, UDP ${m.threadsAtIdle100Peers.udp})`,
    );
    const ip100 = m.idleParts100Peers;
    console.log(
      `  … of which                        anonymous ${f(ip100.anonMb, 1)} MiB (V8 heap ${f(ip100.v8HeapMb ?? NaN, 1)}, ${f(ip100.v8HeapUsedMb ?? NaN, 1)} in use; external ${f(ip100.externalMb ?? NaN, 1)}), file-backed ${f(ip100.fileMb, 1)} MiB`,
    );
    console.log(`                                    ${m.idleReleases100Peers} idle release(s) by then, the last ${f(ip100.releaseAgoS ?? NaN, 1)} s before`);
    console.log(
      `  … reader threads retired          ${f(m.rssRetired100PeersMb, 1)} MiB (${(RETIRE_AFTER_MS + IDLE_SETTLE_MS) / 1000} s after the last transfer; threads still running: TUN ${m.threadsAtRetired.tun}, UDP ${m.threadsAtRetired.udp})`,
    );
    const ipn = m.idleParts1000Names;
    console.log(
      `  daemon RSS idle, 1,000 names      ${f(m.rssIdle1000NamesMb, 1)} MiB (the 100 peers and 900 extra DNS records in the resolver's zone, each record added with its own map)`,
      `\n  … of which                        anonymous ${f(ipn.anonMb, 1)} MiB (V8 heap ${f(ipn.v8HeapMb ?? NaN, 1)}, ${f(ipn.v8HeapUsedMb ?? NaN, 1)} in use; external ${f(ipn.externalMb ?? NaN, 1)}), last idle release ${f(ipn.releaseAgoS ?? NaN, 1)} s before`,
    );
    console.log(`  meshctl status                    ${f(m.statusMs)} ms wall (goal ≤ 150; bare \`node -e 0\` ${f(m.nodeBareMs)} ms)`);
    console.log(`  meshctl status --json             ${f(m.statusJsonMs)} ms wall`);
    if (m.statusWithExtraCaMs !== null)
      console.log(
        `  … with NODE_EXTRA_CA_CERTS set     ${f(m.statusWithExtraCaMs)} ms wall (bare node ${f(m.nodeBareWithExtraCaMs ?? NaN)} ms): the variable's CA parsing, paid by every Node process`,
      );
    console.log(`  direct (daemon, MTU 1280)         ${f(m.directMbps)} Mbit/s, RTT ${f(m.directRttMs, 3)} ms`);
    console.log(`  relayed (meshctl relay serve)     ${f(m.relayMbps)} Mbit/s, RTT ${f(m.relayRttMs, 3)} ms`);
    console.log(`  relay / direct throughput         ${f(m.relayMbps / m.directMbps, 2)} (goal ≥ 0.5)`);
    Object.assign(out, { system: m, lab: l });
  }
  if (ONLY === 'relay') {
    // the relayed path alone: --runs fresh labs, direct then relayed in each; --cpu-prof DIR profiles the
    // relay and both daemons (relayed transfer only, no direct test) for bench/cpuprofile.ts to summarise
    const i = args.indexOf('--cpu-prof');
    const profileDir = i >= 0 ? args[i + 1] : undefined;
    // --relay-shape 5,50: then the relay's link shaped to each rate (tc tbf), relayed goodput against what framing allows
    const sh = args.indexOf('--relay-shape');
    const shapeMbps =
      sh >= 0
        ? (args[sh + 1] ?? '')
            .split(',')
            .map(Number)
            .filter((x) => x > 0)
        : [];
    const rs: RelayPathResult[] = [];
    for (let k = 0; k < RUNS; k++) {
      const r = await measureRelayPath({
        seconds: SECONDS,
        relayOnly: profileDir !== undefined,
        profileDir: profileDir && join(profileDir, String(k)),
        shapeMbps,
      });
      for (const x of r.shaped) {
        // the measured ceiling: payload per byte the busier shaper sent (framing, TLS records, both TCPs' ACKs, as
        // they were); the link's use: goodput over what that ceiling allows at the link's rate
        const ceiling = x.payloadBytes / Math.max(x.link.out.bytes, x.link.in.bytes);
        const computed = relayCeiling(relayShortIdsWanted() ? 2 : 32);
        const share = x.relayMbps / x.linkMbps;
        console.error(
          `  relay link shaped to ${x.linkMbps} Mbit/s both ways: relayed goodput ${f(x.relayMbps, 2)} Mbit/s = ${f(share, 3)} of the link; ` +
            `ceiling measured ${f(ceiling, 3)} (payload per byte on the link), computed ${f(computed.low, 3)}–${f(computed.high, 3)}; ` +
            `goodput ${f(share / ceiling, 3)} of the measured ceiling; shaper drops out / in ${x.link.out.drops} / ${x.link.in.drops}, ` +
            `${x.retransmits ?? '-'} TCP retransmits`,
        );
      }
      rs.push(r);
      const c = r.cpu;
      console.error(
        `  direct ${f(r.directMbps ?? NaN)} Mbit/s, relayed ${f(r.relayMbps)} Mbit/s (ratio ${f(r.relayMbps / (r.directMbps ?? NaN), 2)}), RTT ${f(r.relayRttMs, 3)} ms; ` +
          `CPU/s relay ${f(c.relay, 2)}, sender ${f(c.sender, 2)}, receiver ${f(c.receiver, 2)}, machine ${f(c.machine, 2)}; ` +
          `relayed ${r.relayed.packets} packets, ${r.relayed.queueFull} dropped (queue full), ${r.relayed.retransmits ?? '-'} TCP retransmits; ${r.tls.protocol} ${r.tls.cipher}; load ${r.loadAvg.join(' ')}`,
      );
    }
    const d = median(rs.map((r) => r.directMbps ?? NaN));
    const rl = median(rs.map((r) => r.relayMbps));
    console.log(`direct (daemon, MTU 1280)  ${f(d)} Mbit/s (median of ${RUNS})`);
    console.log(`relayed                    ${f(rl)} Mbit/s, ratio of medians ${f(rl / d, 2)} (goal ≥ 0.5)`);
    console.log(`ratio per run              ${rs.map((r) => f(r.relayMbps / (r.directMbps ?? NaN), 2)).join(' ')}`);
    if (profileDir) console.log(`profiles under ${profileDir}/<run>/{relay,daemon}: node dist/bench/cpuprofile.js FILE...`);
    Object.assign(out, { relayPath: rs });
  }
  if (ONLY === 'all' || ONLY === 'dns') {
    // the resolver: mesh and forwarded names against the upstream asked directly, interleaved; RSS with 1000 names
    const d = await measureDns(opt('--dns-queries', 3000));
    printDns(d);
    Object.assign(out, { dns: d });
  }
  const dir = join(packageRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${String(out.date).replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`saved ${file}`);
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
