// The whole system on a LAN of namespaces: time from `meshctl up` to the first
// ping, daemon RSS idle with 1 and with 100 peers, CLI latency of `status`, and
// a pair's throughput and RTT direct and when forced through `meshctl relay serve`.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshLab } from '../test/helpers/mesh.js';
import { RETIRE_AFTER_MS } from '../src/util/reader-mode.js';
import { admin } from '../src/control/admin-client.js';
import { must, sh } from '../test/helpers/netns.js';
import { packageRoot } from '../src/cli/version.js';
import type { Status } from '../src/localapi/types.js';
import { firstReply } from './first-reply.js';
import { median, percentile, rssMb, rssPartsMb } from './procstat.js';

export interface MeshResult {
  upToFirstPingMs: number;
  /** 2 s after the first direct path, and after IDLE_SETTLE_MS more without traffic */
  rssAfterUp1PeerMb: number;
  rssIdle1PeerMb: number;
  /** the daemon's idle memory releases so far, read right after rssIdle1PeerMb */
  idleReleases1Peer: number;
  /** what rssIdle1PeerMb is made of: anonymous and file-backed pages, and V8's heap (part of anon) */
  idleParts1Peer: IdleParts;
  rssIdle100PeersMb: number;
  /** with 100 peers and 900 extra DNS records: 1,000 names in the resolver's zone */
  rssIdle1000NamesMb: number;
  idleParts1000Names: IdleParts;
  /** the same parts and release count at the 100-peer reading (to explain an outlier: a release that ran while maps came in, docs/performance.md) */
  idleParts100Peers: IdleParts;
  idleReleases100Peers: number;
  /** the same once the reader threads have retired */
  rssRetired100PeersMb: number;
  /** whether each reader thread was still running at that point (status counters) */
  threadsAtRetired: { tun: boolean | null; udp: boolean | null };
  /** seconds from the last transfer to the 100-peer idle reading, and the reader threads running then */
  idle100PeersAfterS: number;
  threadsAtIdle100Peers: { tun: boolean | null; udp: boolean | null };
  statusMs: number;
  statusJsonMs: number;
  /** the same with the environment's NODE_EXTRA_CA_CERTS, when set; and bare `node -e 0` both ways */
  statusWithExtraCaMs: number | null;
  nodeBareMs: number;
  nodeBareWithExtraCaMs: number | null;
  directMbps: number;
  directRttMs: number;
  relayMbps: number;
  relayRttMs: number;
}

const BIN = join(packageRoot(), 'bin', 'meshctl');
/** extra DNS records beside the 100 nodes: 1,000 names in the daemon's zone */
const EXTRA_NAMES = 900;
/**
 * The daemon hands memory back 10–20 s into a quiet spell (util/idle-memory.ts
 * checks every 5 s), so "idle" is measured 20 s after the last traffic.
 */
export const IDLE_SETTLE_MS = 20_000;

export async function iperf(m: MeshLab, fromNs: string, toNs: string, ip: string, seconds: number): Promise<number> {
  const server = m.lab.spawn(toNs, ['iperf3', '-s', '-1']);
  await new Promise((r) => setTimeout(r, 300));
  try {
    const out = await must('ip', ['netns', 'exec', fromNs, 'iperf3', '-c', ip, '-t', String(seconds), '-J'], (seconds + 30) * 1000);
    return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6;
  } finally {
    server.kill();
  }
}

export async function rtt(ns: string, ip: string): Promise<number> {
  const out = await must('ip', ['netns', 'exec', ns, 'ping', '-c', '100', '-i', '0.01', ip], 30_000);
  return median([...out.matchAll(/time=([\d.]+) ms/g)].map((x) => Number(x[1])));
}

/**
 * The CLI is timed without NODE_EXTRA_CA_CERTS: where it is set (this sandbox
 * sets it) every Node process parses that CA bundle at start, ~45 ms that is
 * the environment's, not meshctl's. The bench prints bare `node -e 0` both ways.
 */
export const cliEnv = (withExtraCa: boolean): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  if (!withExtraCa) delete env.NODE_EXTRA_CA_CERTS;
  return env;
};

export function nodeStartMs(withExtraCa: boolean, n = 20): number {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', '0'], { env: cliEnv(withExtraCa) });
    times.push(performance.now() - t0);
  }
  return percentile(times, 0.5);
}

function cliMs(socket: string, args: string[], n = 20, withExtraCa = false): number {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [BIN, '--socket', socket, ...args], { encoding: 'utf8', env: cliEnv(withExtraCa) });
    times.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`meshctl ${args.join(' ')}: ${r.stderr}`);
  }
  return percentile(times, 0.5);
}

export async function status(socket: string): Promise<Status> {
  return JSON.parse(spawnSync(process.execPath, [BIN, '--socket', socket, 'status', '--json'], { encoding: 'utf8' }).stdout) as Status;
}

export interface IdleParts {
  anonMb: number;
  fileMb: number;
  /** V8's heap (part of anon): reserved, and live or not yet collected */
  v8HeapMb: number | null;
  v8HeapUsedMb: number | null;
  /** Buffers and other memory outside V8's heap that JS objects hold */
  externalMb: number | null;
  /** seconds since the daemon's last idle release (null: none yet) */
  releaseAgoS: number | null;
}

/** The daemon's idle releases so far and what its RSS is made of (parts read by the caller at the RSS reading). */
async function memoryNow(socket: string, parts: { anon: number; file: number }): Promise<{ releases: number; parts: IdleParts }> {
  const mem = (await status(socket)).counters?.memory as
    | { idleReleases?: number; heapTotal?: number; heapUsed?: number; external?: number; idleReleaseAgoMs?: number | null }
    | undefined;
  const mb = (x: number | undefined): number | null => (x === undefined ? null : x / 1048576);
  const ago = mem?.idleReleaseAgoMs;
  return {
    releases: mem?.idleReleases ?? 0,
    parts: {
      anonMb: parts.anon,
      fileMb: parts.file,
      v8HeapMb: mb(mem?.heapTotal),
      v8HeapUsedMb: mb(mem?.heapUsed),
      externalMb: mb(mem?.external),
      releaseAgoS: ago === undefined || ago === null ? null : ago / 1000,
    },
  };
}

export async function until(what: string, fn: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function measureMesh(seconds: number): Promise<MeshResult> {
  const m = new MeshLab();
  try {
    await m.build(2);
    m.spawnRelay('lan');
    await m.startControl(['--relay', `lan=https://${m.controlIp}:8444?stun=3478`]);
    const key = await m.authKey(['--reusable']);
    const [n1, n2] = m.nodes as [(typeof m.nodes)[0], (typeof m.nodes)[0]];
    const t0 = performance.now();
    const ups = await Promise.all([m.up(n1, ['--auth-key', key]), m.up(n2, ['--auth-key', key])]);
    for (const u of ups) if (u.code !== 0) throw new Error(`up: ${u.stderr}`);
    const ip2 = (await status(n2.socket)).self!.ips[0]!;
    await firstReply(n1.ns, ip2, 30_000);
    const upToFirstPingMs = performance.now() - t0;
    await until('direct path', async () => (await status(n1.socket)).peers[0]?.path.kind === 'direct', 15_000);
    await new Promise((r) => setTimeout(r, 2000));
    const pid1 = Number(readFileSync(join(n1.stateDir, 'daemon.pid'), 'utf8'));
    const rssAfterUp1PeerMb = rssMb(pid1);
    // idle: long enough for the daemon's own release (10–15 s after the last traffic, util/idle-memory.ts)
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
    const rssIdle1PeerMb = rssMb(pid1);
    const parts = rssPartsMb(pid1);
    const { releases: idleReleases1Peer, parts: idleParts1Peer } = await memoryNow(n1.socket, parts);
    const statusMs = cliMs(n1.socket, ['status']);
    const statusJsonMs = cliMs(n1.socket, ['status', '--json']);
    const statusWithExtraCaMs = process.env.NODE_EXTRA_CA_CERTS ? cliMs(n1.socket, ['status'], 20, true) : null;
    const nodeBareMs = nodeStartMs(false);
    const nodeBareWithExtraCaMs = process.env.NODE_EXTRA_CA_CERTS ? nodeStartMs(true) : null;
    const directRttMs = await rtt(n1.ns, ip2);
    const directMbps = await iperf(m, n1.ns, n2.ns, ip2, seconds);

    // force the pair through the relay: no UDP between the two nodes
    const cut = `table inet benchcut {\n  chain o {\n    type filter hook output priority 0; policy accept;\n    ip daddr ${n2.lanIp} meta l4proto udp drop\n  }\n  chain i {\n    type filter hook input priority 0; policy accept;\n    ip saddr ${n2.lanIp} meta l4proto udp drop\n  }\n}\n`;
    const r = await sh('sh', ['-c', `printf '%s' '${cut}' | ip netns exec ${n1.ns} nft -f -`]);
    if (r.code !== 0) throw new Error(r.stderr);
    await sh('ip', ['netns', 'exec', n1.ns, 'ping', '-c', '3', '-W', '1', ip2]);
    await until('relay path', async () => (await status(n1.socket)).peers[0]?.path.kind === 'relay', 15_000);
    const relayRttMs = await rtt(n1.ns, ip2);
    const relayMbps = await iperf(m, n1.ns, n2.ns, ip2, seconds);
    const lastTransferMs = performance.now();

    // 100 peers: 99 more nodes, registered and online
    const fake = m.lab.spawn(m.controlNs, [process.execPath, join(packageRoot(), 'dist', 'bench', 'fake-peers.js'), m.url, m.caFile, key, '98']);
    let out = '';
    fake.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until('98 fake peers', async () => out.includes('ready'), 120_000);
    await until('100 peers in the map', async () => (await status(n1.socket)).peers.filter((p) => p.online).length >= 99, 30_000);
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
    const rssIdle100PeersMb = rssMb(pid1);
    const { releases: idleReleases100Peers, parts: idleParts100Peers } = await memoryNow(n1.socket, rssPartsMb(pid1));
    const idle100PeersAfterS = (performance.now() - lastTransferMs) / 1000;
    const threadsAtIdle100Peers = readerThreads((await status(n1.socket)).counters);
    // reader threads retire RETIRE_AFTER_MS after the last burst (util/reader-mode.ts)
    await new Promise((r) => setTimeout(r, Math.max(0, lastTransferMs + RETIRE_AFTER_MS + IDLE_SETTLE_MS - performance.now())));
    const rssRetired100PeersMb = rssMb(pid1);
    const threadsAtRetired = readerThreads((await status(n1.socket)).counters);

    // 1,000 names: the 100 nodes plus 900 extra DNS records, all in the daemon's zone
    for (let i = 0; i < EXTRA_NAMES; i++) await admin.addDnsRecord(m.controlDir, `host${i}.bench.internal`, `10.98.${i >> 8}.${i & 255}`);
    await until('1,000 names in the zone', async () => (await n1.run(['dns', 'query', `host${EXTRA_NAMES - 1}.bench.internal`, 'A'])).code === 0, 30_000);
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
    const rssIdle1000NamesMb = rssMb(pid1);
    const { parts: idleParts1000Names } = await memoryNow(n1.socket, rssPartsMb(pid1));
    return {
      upToFirstPingMs,
      rssAfterUp1PeerMb,
      rssIdle1PeerMb,
      idleReleases1Peer,
      idleParts1Peer,
      rssIdle100PeersMb,
      idleParts100Peers,
      idleReleases100Peers,
      idle100PeersAfterS,
      threadsAtIdle100Peers,
      rssRetired100PeersMb,
      threadsAtRetired,
      rssIdle1000NamesMb,
      idleParts1000Names,
      statusMs,
      statusJsonMs,
      statusWithExtraCaMs,
      nodeBareMs,
      nodeBareWithExtraCaMs,
      directMbps,
      directRttMs,
      relayMbps,
      relayRttMs,
    };
  } finally {
    await m.cleanup();
  }
}

function readerThreads(counters: unknown): { tun: boolean | null; udp: boolean | null } {
  const c = counters as { tun?: { readerThread?: boolean }; udpReader?: { thread?: boolean } | null } | null;
  return { tun: c?.tun?.readerThread ?? null, udp: c?.udpReader?.thread ?? null };
}
