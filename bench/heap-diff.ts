// `node dist/bench/heap-diff.js A.heapsnapshot B.heapsnapshot [--top N]`: what a V8 heap
// holds more of in B than in A, by node type and name (constructor for objects, the
// function's name for closures), with counts and self sizes. Two snapshots of one daemon
// taken some disturbances apart (bench/growth.ts) show which objects accumulate; a
// snapshot is taken after a full collection, so only live objects count.
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface Group {
  count: number;
  bytes: number;
}

/** Live objects of one snapshot grouped as "type:name" → count and summed self size. */
export function groupSnapshot(text: string): Map<string, Group> {
  const s = JSON.parse(text) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const out = new Map<string, Group>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!] ?? '?';
    let name = s.strings[s.nodes[i + iName]!] ?? '?';
    // strings and numbers are grouped by type alone: their names are their contents
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'heap number') name = '';
    // hidden internals carry addresses or counters in their names
    else if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}:${name}`;
    const g = out.get(key);
    if (g) {
      g.count++;
      g.bytes += s.nodes[i + iSize]!;
    } else out.set(key, { count: 1, bytes: s.nodes[i + iSize]! });
  }
  return out;
}

export interface DiffRow {
  key: string;
  countA: number;
  countB: number;
  bytesA: number;
  bytesB: number;
}

/** Rows for every group, largest count increase first. */
export function diffGroups(a: Map<string, Group>, b: Map<string, Group>): DiffRow[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  const rows: DiffRow[] = [];
  for (const key of keys) {
    const x = a.get(key) ?? { count: 0, bytes: 0 };
    const y = b.get(key) ?? { count: 0, bytes: 0 };
    rows.push({ key, countA: x.count, countB: y.count, bytesA: x.bytes, bytesB: y.bytes });
  }
  return rows.sort((p, q) => q.countB - q.countA - (p.countB - p.countA) || q.bytesB - q.bytesA - (p.bytesB - p.bytesA));
}

function total(g: Map<string, Group>): Group {
  let count = 0;
  let bytes = 0;
  for (const v of g.values()) {
    count += v.count;
    bytes += v.bytes;
  }
  return { count, bytes };
}

function main(): void {
  const args = process.argv.slice(2);
  const files = args.filter((a) => !a.startsWith('--') && !/^\d+$/.test(a));
  const ti = args.indexOf('--top');
  const top = ti >= 0 ? Number(args[ti + 1]) : 30;
  if (files.length !== 2) {
    console.error('usage: node dist/bench/heap-diff.js A.heapsnapshot B.heapsnapshot [--top N]');
    process.exit(2);
  }
  const a = groupSnapshot(readFileSync(files[0]!, 'utf8'));
  const b = groupSnapshot(readFileSync(files[1]!, 'utf8'));
  const ta = total(a);
  const tb = total(b);
  console.log(`A: ${ta.count} nodes, ${(ta.bytes / 1048576).toFixed(2)} MiB; B: ${tb.count} nodes, ${(tb.bytes / 1048576).toFixed(2)} MiB`);
  const rows = diffGroups(a, b);
  console.log('  count A → B (Δ)            self bytes A → B (Δ)         type:name');
  const line = (r: DiffRow) =>
    console.log(
      `  ${`${r.countA} → ${r.countB} (${r.countB - r.countA >= 0 ? '+' : ''}${r.countB - r.countA})`.padEnd(27)}` +
        `${`${r.bytesA} → ${r.bytesB} (${r.bytesB - r.bytesA >= 0 ? '+' : ''}${r.bytesB - r.bytesA})`.padEnd(29)}${r.key}`,
    );
  for (const r of rows.slice(0, top)) line(r);
  console.log('  ... largest byte increases:');
  for (const r of [...rows].sort((p, q) => q.bytesB - q.bytesA - (p.bytesB - p.bytesA)).slice(0, Math.ceil(top / 2))) line(r);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
