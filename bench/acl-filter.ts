// The access filter's own cost per packet, in process: a TCP stream's data
// segments through the inbound hook (a flow table hit after the first) and its
// ACKs through the outbound hook, with bench/acl-rules.json in force; plus new
// flows judged by the rules (a SYN each, every one a table insert).
// usage: node dist/bench/acl-filter.js [--packets N]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AclFilter } from '../src/engine/device/acl-filter.js';
import { systemClock } from '../src/engine/clock.js';
import type { FilterRule } from '../src/netmap/types.js';

const n = Number(process.argv[process.argv.indexOf('--packets') + 1]) || 5_000_000;
const rules = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'bench', 'acl-rules.json'), 'utf8')) as FilterRule[];
const f = new AclFilter(rules, { clock: systemClock });

function tcp(src: number[], dst: number[], sport: number, dport: number, flags: number, len: number): Buffer {
  const p = Buffer.alloc(len);
  p[0] = 0x45;
  p.writeUInt16BE(len, 2);
  p[8] = 64;
  p[9] = 6;
  Buffer.from(src).copy(p, 12);
  Buffer.from(dst).copy(p, 16);
  p.writeUInt16BE(sport, 20);
  p.writeUInt16BE(dport, 22);
  p[32] = 0x50;
  p[33] = flags;
  return p;
}
const A = [10, 78, 0, 1];
const B = [10, 78, 0, 2];
const data = tcp(A, B, 40000, 5201, 0x10, 1400);
const ack = tcp(B, A, 5201, 40000, 0x10, 40);
f.inbound(tcp(A, B, 40000, 5201, 0x02, 60));
for (const [name, run] of [
  ['stream (inbound data + outbound ACK)', () => f.inbound(data) && f.outbound(ack)],
  ['new flows (inbound SYN by rule)', (i: number) => f.inbound(tcp(A, B, 1024 + (i % 60000), 5201, 0x02, 60))],
] as const) {
  const pkts = name.startsWith('new') ? Math.min(n, 200_000) : n;
  for (let i = 0; i < 100_000; i++) run(i);
  const t0 = process.cpuUsage();
  for (let i = 0; i < pkts; i++) run(i);
  const t = process.cpuUsage(t0);
  console.log(`${name}: ${(((t.user + t.system) * 1000) / pkts).toFixed(0)} ns CPU per packet (${pkts} packets)`);
}
console.log(JSON.stringify(f.stats()));
