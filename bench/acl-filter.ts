// The access filter's own cost per packet, in process, on the packets of the
// pair bench (docs/access.md, "Enforcement on the node"), with
// bench/acl-rules.json and generated rules up to 200 in force:
// - a TCP stream: a 1,400-byte data segment in (a flow-table hit), its ACK out;
// - 1,000 TCP flows taking turns, the same two packets each;
// - UDP of 1,400-byte datagrams, one flow: a datagram is two fragments on a
//   1,420-byte tunnel (1,420 + 28 bytes), each with an IP identification of
//   its own, so every datagram records and then finds its first fragment;
// - ping: an echo request out, its reply in;
// - new flows judged by the rules (a SYN each, every one a table insert).
// For each: CPU ns per packet (each hook call is one packet), and the bytes
// allocated per packet (V8's sampling heap profiler, collected objects
// included; a separate run, as sampling slows the code).
// usage: node dist/bench/acl-filter.js [--packets N] [--build DIR]
// (--build: time the filter of another build's dist/ directory on the same packets, to compare builds)
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Session } from 'node:inspector';
import { pathToFileURL } from 'node:url';
import type { AclFilter as AclFilterType } from '../src/engine/device/acl-filter.js';
import { systemClock } from '../src/engine/clock.js';
import type { FilterRule } from '../src/netmap/types.js';

const arg = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const n = Number(arg('--packets')) || 2_000_000;
const build = arg('--build');
const modulePath = build ? pathToFileURL(join(resolve(build), 'src/engine/device/acl-filter.js')).href : '../src/engine/device/acl-filter.js';
const { AclFilter } = (await import(modulePath)) as { AclFilter: typeof AclFilterType };

/** The rule count the brief's "realistic" node carries: acl-rules.json, then rules to other nodes of a /10 mesh. */
const RULES = 200;
const rules = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'bench', 'acl-rules.json'), 'utf8')) as FilterRule[];
let seed = 1;
const rnd = (m: number): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return (seed >>> 8) % m;
};
// the sources of the new-flow case: a LAN behind a router, say
rules.push({ srcIps: ['10.79.0.0/16'], dstPorts: [{ ip: '10.78.0.2/32', first: 5201, last: 5201 }], protocols: [6] });
const meshIp = (): string => `100.${64 + rnd(64)}.${rnd(256)}.${1 + rnd(254)}`;
while (rules.length < RULES) {
  const port = 1 + rnd(60000);
  rules.push({
    srcIps: Array.from({ length: 1 + rnd(16) }, () => `${meshIp()}/32`),
    dstPorts: [{ ip: `${meshIp()}/32`, first: port, last: port + rnd(2) * 1000 }],
    protocols: rnd(2) ? [6] : [6, 17],
  });
}
const f = new AclFilter(rules, { clock: systemClock });

const A = [10, 78, 0, 1];
const B = [10, 78, 0, 2];
function ip4(src: number[], dst: number[], proto: number, len: number): Buffer {
  const p = Buffer.alloc(len);
  p[0] = 0x45;
  p.writeUInt16BE(len, 2);
  p[8] = 64;
  p[9] = proto;
  p.set(src, 12);
  p.set(dst, 16);
  return p;
}
function tcp(src: number[], dst: number[], sport: number, dport: number, flags: number, len: number): Buffer {
  const p = ip4(src, dst, 6, len);
  p.writeUInt16BE(sport, 20);
  p.writeUInt16BE(dport, 22);
  p[32] = 0x50;
  p[33] = flags;
  return p;
}
const data = tcp(A, B, 40000, 5201, 0x10, 1400);
const ack = tcp(B, A, 5201, 40000, 0x10, 40);
f.inbound(tcp(A, B, 40000, 5201, 0x02, 60));
const FLOWS = 1000;
const flowData = Array.from({ length: FLOWS }, (_, i) => tcp(A, B, 20000 + i, 5201, 0x10, 1400));
const flowAck = Array.from({ length: FLOWS }, (_, i) => tcp(B, A, 5201, 20000 + i, 0x10, 40));
for (let i = 0; i < FLOWS; i++) f.inbound(tcp(A, B, 20000 + i, 5201, 0x02, 60));
// a 1,400-byte UDP datagram on a 1,420-byte tunnel: 1,428 bytes of IP, so a first fragment of 1,420 and a second of 28
const first = ip4(A, B, 17, 1420);
first[6] = 0x20; // more fragments
first.writeUInt16BE(40001, 20);
first.writeUInt16BE(5201, 22);
const later = ip4(A, B, 17, 28);
later.writeUInt16BE(175, 6); // offset 1,400 bytes
let ipId = 0;
const datagram = (hook: (p: Buffer) => boolean): boolean => {
  ipId = (ipId + 1) & 0xffff;
  first[4] = later[4] = ipId >> 8;
  first[5] = later[5] = ipId & 0xff;
  return hook(first) && hook(later);
};
const echo = ip4(B, A, 1, 84);
echo[20] = 8;
echo[25] = 7;
const reply = ip4(A, B, 1, 84);
reply[25] = 7;
// a new flow each: another source in 10.79.0.0/16 or source port, written into one packet
const syn = tcp([10, 79, 0, 0], B, 0, 5201, 0x02, 60);
let synCount = 0;
const newFlow = (): boolean => {
  const k = synCount++;
  syn[14] = (k >> 8) & 0xff;
  syn[15] = k & 0xff;
  const port = 1024 + (k >>> 16);
  syn[20] = port >> 8;
  syn[21] = port & 0xff;
  return f.inbound(syn);
};
const inbound = (p: Buffer): boolean => f.inbound(p);
const outbound = (p: Buffer): boolean => f.outbound(p);

// each case: packets per call of `run`, and `run` (true: every packet passed)
const cases: [string, number, (i: number) => boolean][] = [
  ['TCP stream, data in + ACK out', 2, () => f.inbound(data) && f.outbound(ack)],
  [`TCP, ${FLOWS} flows in turn, data in + ACK out`, 2, (i) => f.inbound(flowData[i % FLOWS]!) && f.outbound(flowAck[i % FLOWS]!)],
  ['UDP 1,400 B in (2 fragments a datagram)', 2, () => datagram(inbound)],
  ['UDP 1,400 B out (2 fragments a datagram)', 2, () => datagram(outbound)],
  ['ping, echo out + reply in', 2, () => f.outbound(echo) && f.inbound(reply)],
  // the table fills after 65,536: from then on each new flow also evicts the one idle longest
  ['new flows, a SYN in judged by the rules', 1, newFlow],
];

const session = new Session();
session.connect();
const post = <T>(method: string, params: object = {}): Promise<T> =>
  new Promise((res, rej) => session.post(method, params, (err, r) => (err ? rej(err) : res(r as T))));
interface ProfileNode {
  selfSize: number;
  children: ProfileNode[];
}

console.log(`${build ?? 'this build'}: ${rules.length} rules`);
for (const [name, per, run] of cases) {
  const calls = Math.floor((name.startsWith('new') ? Math.min(n, 200_000) : n) / per);
  for (let i = 0; i < 100_000 / per; i++) if (!run(i)) throw new Error(`${name}: a packet was dropped`);
  const t0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) run(i);
  const t = process.cpuUsage(t0);
  const ns = ((t.user + t.system) * 1000) / (calls * per);
  await post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  const sampled = Math.min(calls, 200_000);
  for (let i = 0; i < sampled; i++) run(i);
  const { profile } = await post<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling');
  let bytes = 0;
  const walk = (node: ProfileNode): void => {
    bytes += node.selfSize;
    node.children.forEach(walk);
  };
  walk(profile.head);
  console.log(`${name}: ${ns.toFixed(0)} ns CPU per packet, ${(bytes / (sampled * per)).toFixed(0)} B allocated per packet (${calls * per} packets)`);
}
session.disconnect();
console.log(JSON.stringify(f.stats()));
