// `node dist/bench/growth.js [--cycles N] [--snap 20,100] [--only KIND,...] [--gap-ms MS]` (root): the soak's
// disturbances in a tight loop on a small lab (public, easy NAT, hard NAT, UDP-blocked), to tell a daemon's
// warm-up from a leak in minutes instead of hours. One cycle runs each disturbance of bench/disturbances.ts once (`--only` takes their
// kinds: "down/up", "NAT rebind", policy, "relay restart", routes, "control restart"). At each cycle in --snap it takes a V8 heap snapshot
// of every daemon (SIGUSR2 through --heapsnapshot-signal; the snapshot begins with a full collection) and
// prints RSS (anon, file), threads, fds and process.memoryUsage() right after it; compare two snapshots with
// bench/heap-diff.ts. The snapshots stay in /tmp/meshctl-growth-NAME/snap.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/cli/version.js';
import { Lab } from '../src/lab/lab.js';
import { allPathsKnown } from '../src/lab/report.js';
import type { LabNode, NatKind } from '../src/lab/topology.js';
import { LocalClient } from '../src/localapi/client.js';
import { LOCALAPI, type Status } from '../src/localapi/types.js';
import { disturbances } from './disturbances.js';

const BIN = join(packageRoot(), 'bin', 'meshctl');
const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const CYCLES = Number(arg('--cycles') ?? 100);
const SNAP_AT = new Set((arg('--snap') ?? `1,${Math.round(CYCLES / 4)},${CYCLES}`).split(',').filter(Boolean).map(Number));
const ONLY = arg('--only')?.split(',');
/** --ping: every node pings the next every 200 ms through the mesh, as in the soak (the tunnel is then never quiet) */
const PING = args.includes('--ping');
/** Memory figures of every daemon (no snapshot, no collection) are printed every this many cycles. */
/** --hold-s N: keep the lab N seconds after the cycles (gdb, smaps) before tearing it down */
const HOLD_S = Number(arg('--hold-s') ?? 0);
const SAMPLE_EVERY = Number(arg('--sample-every') ?? 5);
/** A pause between disturbances: enough for a restarted server to listen before the next one needs it. */
const GAP_MS = Number(arg('--gap-ms') ?? 300);
const KINDS: NatKind[] = ['public', 'easy', 'hard', 'blocked'];
/** A heap snapshot of a ~20 MB heap takes a few seconds on a loaded machine. */
const SNAPSHOT_TIMEOUT_MS = 120_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident anonymous memory by kind of mapping: the brk heap (glibc's main arena) and the other anonymous ones (V8 pages, thread arenas). */
function smapsFigures(pid: number): { brkMb: number; anonMapsMb: number; anonMaps: number } {
  let brk = 0;
  let anon = 0;
  let maps = 0;
  let cur: 'brk' | 'anon' | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const path = head[1]!.trim();
      cur = path === '[heap]' ? 'brk' : path === '' ? 'anon' : null;
      if (cur === 'anon') maps++;
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m && cur === 'brk') brk += Number(m[1]);
    else if (m && cur === 'anon') anon += Number(m[1]);
  }
  return { brkMb: brk / 1024, anonMapsMb: anon / 1024, anonMaps: maps };
}

function procFigures(pid: number): Record<string, number> {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1] ?? NaN) / 1024;
  return {
    rssMb: kb('VmRSS'),
    anonMb: kb('RssAnon'),
    fileMb: kb('RssFile'),
    threads: readdirSync(`/proc/${pid}/task`).length,
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench/growth needs root (network namespaces, TUN)');
    process.exit(1);
  }
  const name = `g${process.pid % 10000}`;
  const dir = `/tmp/meshctl-growth-${name}`;
  const snapDir = join(dir, 'snap');
  mkdirSync(snapDir, { recursive: true });
  const env = { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapDir}` };
  const lab = await Lab.create({ name, kinds: KINDS, bin: BIN, dir: join(dir, 'lab'), env });
  let interrupted = false;
  const pingers: ChildProcess[] = [];
  process.once('SIGINT', () => {
    interrupted = true;
  });
  try {
    await lab.build({ name, kinds: [], bin: BIN, env });
    await lab.startServers();
    await lab.upAll();
    const nodes = lab.s.nodes;
    const clients = new Map(nodes.map((n) => [n.name, new LocalClient(lab.socket(n))]));
    await lab.waitFor('a path between every pair', () => allPathsKnown(lab), 180_000);
    const pids = new Map(nodes.map((n) => [n.name, lab.s.pids[`${n.name}-daemon`]!]));
    console.log(`lab up: ${nodes.map((n) => `${n.name} pid ${pids.get(n.name)}`).join(', ')}; snapshots in ${snapDir}`);

    const snapshot = async (n: LabNode, cycle: number): Promise<void> => {
      const pid = pids.get(n.name)!;
      const before = new Set(readdirSync(snapDir));
      process.kill(pid, 'SIGUSR2');
      const deadline = Date.now() + SNAPSHOT_TIMEOUT_MS;
      let file: string | undefined;
      // the snapshot is written on the daemon's main thread: once it answers again, the file is complete
      for (;;) {
        file = readdirSync(snapDir).find((f) => !before.has(f) && f.includes(`.${pid}.`));
        if (file) {
          try {
            await clients.get(n.name)!.get<Status>(LOCALAPI.status);
            break;
          } catch {
            /* still writing */
          }
        }
        if (Date.now() > deadline) throw new Error(`${n.name}: no heap snapshot within ${SNAPSHOT_TIMEOUT_MS / 1000} s`);
        await sleep(200);
      }
      const st = await clients.get(n.name)!.get<Status>(LOCALAPI.status);
      const mem = (st.counters as { memory?: NodeJS.MemoryUsage } | null)?.memory;
      const p = procFigures(pid);
      const dest = join(snapDir, `${n.name}-c${cycle}.heapsnapshot`);
      writeFileSync(dest, readFileSync(join(snapDir, file)));
      console.log(
        `cycle ${cycle} ${n.name}: RSS ${p.rssMb!.toFixed(1)} (anon ${p.anonMb!.toFixed(1)}, file ${p.fileMb!.toFixed(1)}) MiB, ` +
          `threads ${p.threads}, fds ${p.fds}; heapUsed ${mb(mem?.heapUsed)} heapTotal ${mb(mem?.heapTotal)} external ${mb(mem?.external)} ` +
          `arrayBuffers ${mb(mem?.arrayBuffers)} MiB; snapshot ${(statSync(dest).size / 1048576).toFixed(1)} MB → ${dest}`,
      );
    };

    const mb = (x: number | undefined) => (x === undefined ? '-' : (x / 1048576).toFixed(1));
    const sampleAll = async (cycle: number): Promise<void> => {
      for (const n of nodes) {
        const pid = pids.get(n.name)!;
        const st = await clients.get(n.name)!.get<Status>(LOCALAPI.status);
        const mem = (st.counters as { memory?: NodeJS.MemoryUsage & { heapSpaces: Record<string, number>; idleReleases: number } } | null)?.memory;
        const p = procFigures(pid);
        const sm = smapsFigures(pid);
        const sp = mem?.heapSpaces ?? {};
        console.log(
          `sample c${cycle} ${n.name}: RSS ${p.rssMb!.toFixed(1)} anon ${p.anonMb!.toFixed(1)} (brk ${sm.brkMb.toFixed(1)}, ` +
            `anon maps ${sm.anonMapsMb.toFixed(1)} in ${sm.anonMaps}) file ${p.fileMb!.toFixed(1)}; thr ${p.threads} fds ${p.fds}; ` +
            `heap ${mb(mem?.heapUsed)}/${mb(mem?.heapTotal)} (old ${mb(sp.old_space)} new ${mb(sp.new_space)} code ${mb(sp.code_space)} ` +
            `lo ${mb(sp.large_object_space)}) ext ${mb(mem?.external)} ab ${mb(mem?.arrayBuffers)}; releases ${mem?.idleReleases}`,
        );
      }
    };
    if (PING) {
      for (let i = 0; i < nodes.length; i++) {
        const from = nodes[i]!;
        const to = nodes[(i + 1) % nodes.length]!;
        const ip = (await clients.get(to.name)!.get<Status>(LOCALAPI.status)).self!.ips[0]!;
        const p = spawn('ip', ['netns', 'exec', from.ns, 'ping', '-q', '-n', '-i', '0.2', ip], { stdio: 'ignore' });
        pingers.push(p);
      }
    }
    const all = disturbances(lab, nodes, clients, { bin: BIN, downHoldMs: 500 });
    const chosen = all.filter(([k]) => !ONLY || ONLY.includes(k));
    const failures = new Map<string, number>();
    const t0 = Date.now();
    for (let c = 1; c <= CYCLES && !interrupted; c++) {
      for (const [kind, run] of chosen) {
        try {
          await run();
        } catch (err) {
          failures.set(kind, (failures.get(kind) ?? 0) + 1);
          if ((failures.get(kind) ?? 0) <= 3) console.log(`cycle ${c}: ${kind} failed: ${(err as Error).message}`);
        }
        await sleep(GAP_MS);
      }
      if (c % SAMPLE_EVERY === 0 || c === 1) await sampleAll(c);
      if (SNAP_AT.has(c)) {
        // let the last disturbance settle (reconnects, netcheck) before the picture
        await sleep(5000);
        console.log(
          `-- cycle ${c} after ${((Date.now() - t0) / 1000).toFixed(0)} s, load ${loadavg()
            .map((x) => x.toFixed(2))
            .join(' ')}`,
        );
        for (const n of nodes) await snapshot(n, c);
      }
    }
    if (HOLD_S > 0) {
      console.log(`holding the lab ${HOLD_S} s (pings running) for inspection`);
      await sleep(HOLD_S * 1000);
    }
    if (PING) {
      // a quiet tunnel: the daemons' idle release (full collections, malloc_trim) runs 10-15 s after the last packet
      for (const p of pingers) p.kill('SIGINT');
      await sleep(25_000);
      await sampleAll(CYCLES);
    }
    console.log(`failures: ${[...failures].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  } finally {
    for (const p of pingers) p.kill('SIGINT');
    await lab.down();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
