// The resolver's latency and memory (`npm run bench -- --dns-only`, or alone:
// `node dist/bench/dns.js [--queries N]`). A child process plays the daemon:
// a DnsServer on loopback with a 1000-name zone, forwarding to a fake upstream
// resolver (dns-packet, answering at once) in the same child. This process asks,
// one query at a time and interleaved (mesh name, forwarded name, the upstream
// directly), and prints p50/p99 of each, what forwarding adds to the upstream's
// p50, and the child's RSS with the zone loaded. Goals: mesh p99 ≤ 1 ms,
// forwarding adds ≤ 1 ms to the upstream's p50.
import { fork } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import * as dnsPacket from 'dns-packet';
import { DnsServer } from '../src/dns/server.js';
import { buildZone } from '../src/dns/zone.js';
import type { NetworkMap, NodeView } from '../src/netmap/types.js';
import { parseIpEndpoint } from '../src/util/netaddr.js';
import { median, percentile, rssMb } from './procstat.js';

/** Names in the bench's zone: the figure. */
export const BENCH_ZONE_NAMES = 1000;
const WARMUP_QUERIES = 300;
const SUFFIX = 'mesh.internal';

export interface DnsBenchResult {
  queries: number;
  meshP50Ms: number;
  meshP99Ms: number;
  forwardedP50Ms: number;
  forwardedP99Ms: number;
  upstreamP50Ms: number;
  upstreamP99Ms: number;
  /** forwarded p50 minus upstream p50 */
  forwardAddsMs: number;
  /** the resolver process's RSS with the zone loaded, after the queries */
  rssMb: number;
  /** the same process before the zone and server existed */
  rssBaseMb: number;
  /** V8 heap in use after a GC, minus the same before the zone and server existed: what the zone and server hold */
  heapAddedMb: number;
}

function benchMap(names: number): NetworkMap {
  const view = (i: number): NodeView => ({
    id: i,
    name: `host${i}`,
    nodeKey: `k${i}`,
    discoKey: `d${i}`,
    addresses: [`100.64.${i >> 8}.${i & 0xff}`, `fd7a:115c:a1e0::${i.toString(16)}`],
    allowedIps: [],
    endpoints: [],
    homeRelay: null,
    online: true,
    lastSeen: null,
    os: 'linux',
    version: '1',
    keyExpiry: null,
    ephemeral: false,
  });
  return {
    self: view(1),
    peers: Array.from({ length: names - 1 }, (_, i) => view(i + 2)),
    ipv4Prefix: '100.64.0.0/10',
    ipv6Prefix: 'fd7a:115c:a1e0::/48',
    relays: [],
    dns: { suffix: SUFFIX, resolvers: ['100.100.100.100'], routes: [], records: [] },
  };
}

/** The child: a fake upstream and the resolver; tells the parent both ports and its RSS. */
async function serve(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  const rssBaseMb = process.memoryUsage().rss / 1048576;
  const heapBaseMb = process.memoryUsage().heapUsed / 1048576;
  const upstream = createSocket('udp4');
  upstream.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const name = q.questions![0]!.name;
    const reply: dnsPacket.Packet = {
      type: 'response',
      id: q.id,
      flags: dnsPacket.RECURSION_AVAILABLE,
      questions: q.questions,
      answers: [{ type: 'A', name, ttl: 300, class: 'IN', data: '192.0.2.1' }],
    };
    upstream.send(dnsPacket.encode(reply), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', () => r()));
  const upstreamPort = upstream.address().port;
  const server = new DnsServer({
    upstreams: () => [parseIpEndpoint(`127.0.0.1:${upstreamPort}`)],
    allowSource: () => true,
    sourceRate: { perSecond: 1e6, burst: 1e6, maxKeys: 16 },
  });
  server.setZone(buildZone(benchMap(BENCH_ZONE_NAMES)));
  await server.listen([{ host: '127.0.0.1', port: 0 }]);
  process.send!({ upstreamPort, serverPort: server.addresses()[0]!.port, rssBaseMb, heapBaseMb });
  process.on('message', (m) => {
    if (m === 'memory') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      process.send!({ rssMb: process.memoryUsage().rss / 1048576, heapUsedMb: process.memoryUsage().heapUsed / 1048576 });
      return;
    }
    void server.close().then(() => {
      upstream.close();
      process.exit(0);
    });
  });
}

/** One UDP socket asking one question at a time. */
function asker(): { ask(port: number, name: string): Promise<number>; close(): void } {
  const sock: UdpSocket = createSocket('udp4');
  let waiting: { id: number; resolve: (ms: number) => void; t0: number } | null = null;
  let nextId = 1;
  sock.on('message', (msg) => {
    const p = dnsPacket.decode(msg);
    if (waiting && p.id === waiting.id) {
      const w = waiting;
      waiting = null;
      w.resolve(performance.now() - w.t0);
    }
  });
  return {
    ask: (port, name) =>
      new Promise((resolve, reject) => {
        const id = nextId++ & 0xffff;
        const wire = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
        const timer = setTimeout(() => reject(new Error(`no answer for ${name} in 5 s`)), 5000);
        waiting = {
          id,
          t0: performance.now(),
          resolve: (ms) => {
            clearTimeout(timer);
            resolve(ms);
          },
        };
        sock.send(wire, port, '127.0.0.1');
      }),
    close: () => sock.close(),
  };
}

export async function measureDns(queries = 3000): Promise<DnsBenchResult> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc'] });
  try {
    type Ready = { upstreamPort: number; serverPort: number; rssBaseMb: number; heapBaseMb: number };
    const ports = await new Promise<Ready>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Ready));
      child.once('exit', (code) => reject(new Error(`the resolver process exited (${code})`)));
    });
    const a = asker();
    const mesh: number[] = [];
    const fwd: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < WARMUP_QUERIES + queries; i++) {
      const host = `host${(i % BENCH_ZONE_NAMES) + 1}.${SUFFIX}`;
      const m = await a.ask(ports.serverPort, host);
      const f = await a.ask(ports.serverPort, `www${i}.example.com`);
      const d = await a.ask(ports.upstreamPort, `www${i}.example.com`);
      if (i < WARMUP_QUERIES) continue;
      mesh.push(m);
      fwd.push(f);
      direct.push(d);
    }
    a.close();
    const rss = rssMb(child.pid!);
    child.send('memory');
    const mem = await new Promise<{ rssMb: number; heapUsedMb: number }>((r) => child.once('message', (m) => r(m as { rssMb: number; heapUsedMb: number })));
    return {
      queries,
      meshP50Ms: median(mesh),
      meshP99Ms: percentile(mesh, 0.99),
      forwardedP50Ms: median(fwd),
      forwardedP99Ms: percentile(fwd, 0.99),
      upstreamP50Ms: median(direct),
      upstreamP99Ms: percentile(direct, 0.99),
      forwardAddsMs: median(fwd) - median(direct),
      rssMb: rss,
      rssBaseMb: ports.rssBaseMb,
      heapAddedMb: mem.heapUsedMb - ports.heapBaseMb,
    };
  } finally {
    child.send('stop');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

export function printDns(r: DnsBenchResult): void {
  const f = (x: number): string => x.toFixed(3);
  console.log(`\nresolver (${r.queries} queries each, interleaved, one at a time over UDP on loopback; ${BENCH_ZONE_NAMES}-name zone)`);
  console.log(`  mesh name          p50 ${f(r.meshP50Ms)} ms, p99 ${f(r.meshP99Ms)} ms (goal p99 ≤ 1 ms)`);
  console.log(`  forwarded name     p50 ${f(r.forwardedP50Ms)} ms, p99 ${f(r.forwardedP99Ms)} ms`);
  console.log(`  upstream directly  p50 ${f(r.upstreamP50Ms)} ms, p99 ${f(r.upstreamP99Ms)} ms`);
  console.log(`  forwarding adds    ${f(r.forwardAddsMs)} ms to the upstream's p50 (goal ≤ 1 ms)`);
  console.log(
    `  resolver process RSS ${r.rssMb.toFixed(1)} MiB with the zone (${r.rssBaseMb.toFixed(1)} MiB before zone and server); heap held by zone and server ${r.heapAddedMb.toFixed(1)} MiB`,
  );
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] === self) {
  if (process.argv.includes('--serve')) void serve();
  else {
    const i = process.argv.indexOf('--queries');
    const n = i >= 0 ? Number(process.argv[i + 1]) : 3000;
    measureDns(n).then(printDns, (err) => {
      console.error(`dns bench failed: ${(err as Error).stack ?? err}`);
      process.exit(1);
    });
  }
}
