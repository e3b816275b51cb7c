// The relayed data path alone (`run.js --relay-only`): a control server, `meshctl relay serve` and two
// daemons on a LAN of namespaces; a pair's throughput direct, then forced through the relay (UDP between
// the nodes dropped). Each round is a fresh lab. With a profile dir, the relay and both daemons run with
// --cpu-prof (the daemons through MESHCTL_DAEMON_NODE_ARGS, only for this run) and are stopped with
// SIGTERM so V8 writes the profiles; the CPU each process spent during the relayed transfer is read
// from /proc, and the TLS version and cipher the relay negotiates are asked once.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshLab } from '../test/helpers/mesh.js';
import { must, sh } from '../test/helpers/netns.js';
import { firstReply } from './first-reply.js';
import { iperf, rtt, status, until } from './mesh.js';
import type { RelayStats } from '../src/relay/server.js';
import { cpuSeconds, busySecondsBetween, machineCpuTicks } from './procstat.js';

const RELAY_PORT = 8444;
/** A process stopped with SIGTERM gets this long to write its profile and exit. */
const PROFILE_EXIT_MS = 10_000;

export interface RelayPathResult {
  directMbps: number | null;
  relayMbps: number;
  relayRttMs: number;
  /** CPU seconds per second of the relayed transfer: the relay, the sender's and the receiver's daemon, the whole machine */
  cpu: { relay: number; sender: number; receiver: number; machine: number };
  /** what the daemons' TLS connection to the relay negotiates (asked by a client like theirs) */
  tls: { protocol: string | null; cipher: string | null };
  loadAvg: number[];
  /** during the relayed transfer: the relay's packets relayed and dropped for a full queue, and the sender's TCP retransmits */
  relayed: { packets: number; queueFull: number; retransmits: number | null };
  shaped: ShapedResult[];
}

export interface RelayPathOptions {
  seconds: number;
  /** skip the direct measurement (profiles of the relayed transfer only) */
  relayOnly?: boolean;
  /** write --cpu-prof profiles of the relay and both daemons here */
  profileDir?: string;
  /** then shape the relay's link (tc tbf on its namespace's egress) to each of these rates, Mbit/s, and measure again */
  shapeMbps?: number[];
}

/** Bytes of one TCP segment's headers on the relay's link: IPv4 20, TCP with timestamps 32, Ethernet 14 (what tbf charges on a veth). */
const SEGMENT_HEADERS = 20 + 32 + 14;
/** TCP payload per full outer segment (MTU 1500). */
const SEGMENT_PAYLOAD = 1500 - 20 - 32;
/** TLS 1.3 record overhead (header 5, content type 1, AEAD tag 16) and its largest plaintext. */
const TLS_RECORD = { overhead: 22, max: 16_384 };
/** A relay frame's header (type, length) and a WireGuard transport message's header and tag. */
const FRAME_HEADER = 5;
const WG_OVERHEAD = 16 + 16;

/**
 * What framing leaves of a link shaped at the relay for a relayed TCP stream in the tunnel (MTU 1280: 1,228 B of
 * payload in a 1,280 B packet), per data packet, as the payload's share of the bytes on the relay's busier direction
 * (docs/performance.md, "Relay"). `peerBytes`: how a frame names its peer, 32 (a key) or 2 (a short id).
 * high: the data leg alone, in full TLS records and full segments (ACKs of GRO-merged segments are few).
 * low: plus, through the same direction, the relay's outer ACK for every two segments from the sender and the inner
 * TCP's ACK of every two data packets relayed back, each in a TLS record and a segment of its own.
 */
export function relayCeiling(peerBytes: number): { low: number; high: number } {
  const payload = 1228;
  const frameBytes = 1280 + WG_OVERHEAD + FRAME_HEADER + peerBytes;
  const stream = frameBytes * (1 + TLS_RECORD.overhead / TLS_RECORD.max);
  const segments = stream / SEGMENT_PAYLOAD;
  const dataLeg = stream + segments * SEGMENT_HEADERS;
  const outerAcks = (segments / 2) * SEGMENT_HEADERS;
  // an inner ACK is 52 B, padded by WireGuard to 64
  const innerAck = 64 + WG_OVERHEAD + FRAME_HEADER + peerBytes + TLS_RECORD.overhead + SEGMENT_HEADERS;
  return { low: payload / (dataLeg + outerAcks + innerAck / 2), high: payload / dataLeg };
}

export interface ShapedResult {
  linkMbps: number;
  relayMbps: number;
  /** TCP payload the receiver got */
  payloadBytes: number;
  retransmits: number | null;
  /** what the two shapers sent during the shaped transfer (iperf3's whole run, its setup included): out of the relay's host and into it */
  link: { out: QdiscSent; in: QdiscSent; seconds: number };
}

export interface QdiscSent {
  bytes: number;
  packets: number;
  drops: number;
}

/** tbf for a link of `rate` Mbit/s: a bucket of 10 ms at the rate (at least 3 full frames), and 50 ms of queue */
function tbfArgs(rate: number): string[] {
  const burst = Math.max(3 * 1514, Math.round((rate * 1e6) / 8 / 100));
  return ['tbf', 'rate', `${rate}mbit`, 'burst', String(burst), 'latency', '50ms'];
}

/**
 * What a tbf root qdisc has sent: bytes as tbf charges them (every segment of a GSO packet with its own headers,
 * Ethernet's included), packets as it counts them (a GSO packet once), drops.
 */
async function qdiscSent(ns: string, dev: string): Promise<QdiscSent> {
  const j = JSON.parse(await must('ip', ['netns', 'exec', ns, 'tc', '-s', '-j', 'qdisc', 'show', 'dev', dev])) as {
    kind: string;
    root?: boolean;
    bytes: number;
    packets: number;
    drops: number;
  }[];
  const q = j.find((x) => x.root && x.kind === 'tbf');
  if (!q) throw new Error(`no tbf qdisc on ${dev} in ${ns}`);
  return { bytes: q.bytes, packets: q.packets, drops: q.drops };
}

async function tlsInfo(ns: string, host: string): Promise<{ protocol: string | null; cipher: string | null }> {
  const code =
    `const s=require('tls').connect({host:${JSON.stringify(host)},port:${RELAY_PORT},rejectUnauthorized:false},()=>{` +
    `console.log(JSON.stringify({protocol:s.getProtocol(),cipher:s.getCipher().name}));s.destroy()});s.on('error',e=>{console.error(e.message);process.exit(1)})`;
  const r = await sh('ip', ['netns', 'exec', ns, process.execPath, '-e', code]);
  try {
    return JSON.parse(r.stdout) as { protocol: string; cipher: string };
  } catch {
    return { protocol: null, cipher: null };
  }
}

/** The relay's counters: SIGUSR1 makes it print them to stderr as one `stats {...}` line. */
async function relayStats(pid: number, out: { text: string }): Promise<RelayStats> {
  const seen = out.text.length;
  process.kill(pid, 'SIGUSR1');
  const deadline = Date.now() + 5000;
  for (;;) {
    const m = /^stats (\{.*\})$/m.exec(out.text.slice(seen));
    if (m) return JSON.parse(m[1]!) as RelayStats;
    if (Date.now() > deadline) throw new Error('the relay printed no stats on SIGUSR1');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function iperfRetransmits(
  m: MeshLab,
  fromNs: string,
  toNs: string,
  ip: string,
  seconds: number,
): Promise<{ mbps: number; bytes: number; retransmits: number | null }> {
  const server = m.lab.spawn(toNs, ['iperf3', '-s', '-1']);
  await new Promise((r) => setTimeout(r, 300));
  try {
    const out = await must('ip', ['netns', 'exec', fromNs, 'iperf3', '-c', ip, '-t', String(seconds), '-J'], (seconds + 30) * 1000);
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number; bytes: number }; sum_sent: { retransmits?: number } } };
    return { mbps: j.end.sum_received.bits_per_second / 1e6, bytes: j.end.sum_received.bytes, retransmits: j.end.sum_sent.retransmits ?? null };
  } finally {
    server.kill();
  }
}

async function stopForProfile(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + PROFILE_EXIT_MS;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function measureRelayPath(o: RelayPathOptions): Promise<RelayPathResult> {
  const m = new MeshLab();
  const prof = o.profileDir;
  if (prof) mkdirSync(prof, { recursive: true });
  try {
    const profArgs = (name: string): string[] => (prof ? ['--cpu-prof', `--cpu-prof-dir=${join(prof, name)}`] : []);
    await m.build(2, prof ? { MESHCTL_DAEMON_NODE_ARGS: profArgs('daemon').join(' ') } : {});
    const relay = m.spawnRelay('lan', [], profArgs('relay'));
    const relayErr = { text: '' };
    relay.stderr!.on('data', (d: Buffer) => {
      relayErr.text += d.toString();
      if (relayErr.text.length > 1 << 20) relayErr.text = relayErr.text.slice(-(1 << 16));
    });
    await m.startControl(['--relay', `lan=https://${m.controlIp}:${RELAY_PORT}?stun=3478`]);
    const key = await m.authKey(['--reusable']);
    const [n1, n2] = m.nodes as [(typeof m.nodes)[0], (typeof m.nodes)[0]];
    const ups = await Promise.all([m.up(n1, ['--auth-key', key]), m.up(n2, ['--auth-key', key])]);
    for (const u of ups) if (u.code !== 0) throw new Error(`up: ${u.stderr}`);
    const ip2 = (await status(n2.socket)).self!.ips[0]!;
    await firstReply(n1.ns, ip2, 30_000);
    await until('direct path', async () => (await status(n1.socket)).peers[0]?.path.kind === 'direct', 15_000);
    const directMbps = o.relayOnly ? null : await iperf(m, n1.ns, n2.ns, ip2, o.seconds);

    const cut = `table inet benchcut {\n  chain o {\n    type filter hook output priority 0; policy accept;\n    ip daddr ${n2.lanIp} meta l4proto udp drop\n  }\n  chain i {\n    type filter hook input priority 0; policy accept;\n    ip saddr ${n2.lanIp} meta l4proto udp drop\n  }\n}\n`;
    const r = await sh('sh', ['-c', `printf '%s' '${cut}' | ip netns exec ${n1.ns} nft -f -`]);
    if (r.code !== 0) throw new Error(r.stderr);
    await sh('ip', ['netns', 'exec', n1.ns, 'ping', '-c', '3', '-W', '1', ip2]);
    await until('relay path', async () => (await status(n1.socket)).peers[0]?.path.kind === 'relay', 15_000);
    const relayRttMs = await rtt(n1.ns, ip2);
    const pids = {
      // `ip netns exec` replaces itself with the command: the spawned pid is the relay's own
      relay: relay.pid!,
      sender: Number(readFileSync(join(n1.stateDir, 'daemon.pid'), 'utf8')),
      receiver: Number(readFileSync(join(n2.stateDir, 'daemon.pid'), 'utf8')),
    };
    const before = { relay: cpuSeconds(pids.relay), sender: cpuSeconds(pids.sender), receiver: cpuSeconds(pids.receiver), machine: machineCpuTicks() };
    const s0 = await relayStats(pids.relay, relayErr);
    const t0 = performance.now();
    const { mbps: relayMbps, retransmits } = await iperfRetransmits(m, n1.ns, n2.ns, ip2, o.seconds);
    const wall = (performance.now() - t0) / 1000;
    const cpu = {
      relay: (cpuSeconds(pids.relay) - before.relay) / wall,
      sender: (cpuSeconds(pids.sender) - before.sender) / wall,
      receiver: (cpuSeconds(pids.receiver) - before.receiver) / wall,
      machine: busySecondsBetween(before.machine, machineCpuTicks()) / wall,
    };
    const s1 = await relayStats(pids.relay, relayErr);
    const relayed = { packets: s1.packetsRelayed - s0.packetsRelayed, queueFull: s1.dropped.queueFull - s0.dropped.queueFull, retransmits };
    const tls = await tlsInfo(n1.ns, m.controlIp);
    const loadAvg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
    const shaped: ShapedResult[] = [];
    if (o.shapeMbps?.length) {
      // the relay's (and control's) one link: the veth in its namespace, shaped on both ends, so both directions
      // of the relay's host are held to the rate, as a small cloud server's are
      const links = (await must('ip', ['-n', m.controlNs, '-o', 'link', 'show'])).split('\n');
      const dev = links.map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1]).find((d) => d && d !== 'lo');
      if (!dev || !m.controlBridgeEnd) throw new Error(`no link in ${m.controlNs}`);
      const ends = [
        { ns: m.controlNs, dev },
        { ns: m.controlBridgeEnd.ns, dev: m.controlBridgeEnd.dev },
      ];
      for (const rate of o.shapeMbps) {
        for (const e of ends) await must('ip', ['netns', 'exec', e.ns, 'tc', 'qdisc', 'replace', 'dev', e.dev, 'root', ...tbfArgs(rate)]);
        const sent = (): Promise<QdiscSent[]> => Promise.all(ends.map((e) => qdiscSent(e.ns, e.dev)));
        const c0 = await sent();
        const t1 = performance.now();
        const r2 = await iperfRetransmits(m, n1.ns, n2.ns, ip2, o.seconds);
        const secs = (performance.now() - t1) / 1000;
        const c1 = await sent();
        const [out, inn] = [0, 1].map((k) => ({
          bytes: c1[k]!.bytes - c0[k]!.bytes,
          packets: c1[k]!.packets - c0[k]!.packets,
          drops: c1[k]!.drops - c0[k]!.drops,
        })) as [QdiscSent, QdiscSent];
        shaped.push({ linkMbps: rate, relayMbps: r2.mbps, payloadBytes: r2.bytes, retransmits: r2.retransmits, link: { out, in: inn, seconds: secs } });
      }
      for (const e of ends) await must('ip', ['netns', 'exec', e.ns, 'tc', 'qdisc', 'del', 'dev', e.dev, 'root']);
    }
    if (prof) await Promise.all(Object.values(pids).map(stopForProfile));
    return { directMbps, relayMbps, relayRttMs, cpu, tls, loadAvg, relayed, shaped };
  } finally {
    await m.cleanup();
  }
}
