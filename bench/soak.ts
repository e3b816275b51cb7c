// `npm run soak -- --minutes N` (root): a lab of 8 nodes behind mixed NATs
// (src/lab) with a ping flow from every node to the next, and every few
// seconds one disturbance: a node goes down and up, a NAT router loses its
// mappings, a relay or the control server restarts, the policy or a node's
// routes change. It samples the RSS and open fds of every daemon, the control
// server and the relays, and the daemons' handshake counters, then prints the
// lost-traffic windows (p50/p99/max), growth as slope per hour after the
// warm-up, and any crash; RSS over time is drawn into docs/reliability-soak.svg.
// The promise checked: no crash, no growth beyond noise, every window ≤ 5 s.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import * as vega from 'vega';
import { packageRoot } from '../src/cli/version.js';
import { startProgress } from '../src/cli/ui/progress.js';
import { Lab, tearDown } from '../src/lab/lab.js';
import { allPathsKnown } from '../src/lab/report.js';
import type { LabNode, NatKind } from '../src/lab/topology.js';
import { LocalClient } from '../src/localapi/client.js';
import { LOCALAPI, type Status } from '../src/localapi/types.js';
import { disturbances } from './disturbances.js';
import { counterIncrease, lostWindows, PingParser, quantile, slopePerHour, type Span } from './soak-stats.js';

const BIN = join(packageRoot(), 'bin', 'meshctl');
const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`npm run soak: ${name} needs a positive number`);
    process.exit(2);
  }
  return v;
};

/** How long the disturbances run. */
const MINUTES = opt('--minutes', 30);
/** One disturbance starts this long after the last one ended. */
const EVENT_EVERY_MS = opt('--event-every', 5) * 1000;
/** RSS, fds and handshake counters are read this often: 180 points in 30 min, enough for a slope. */
const SAMPLE_EVERY_MS = 10_000;
/** Samples before this are left out of the slopes: caches, JIT and the first maps settle in the first minutes. */
const WARMUP_MS = Math.min(5 * 60_000, (MINUTES * 60_000) / 4);
/** Echoes per flow: one each 200 ms, so a lost window is measured to a fifth of a second. */
const PING_INTERVAL_MS = 200;
/** A node taken down stays down this long before `up`. */
const DOWN_HOLD_MS = 1000;
/** The promise: no flow loses traffic for longer than this, outside a planned down. */
const MAX_WINDOW_MS = 5000;
/** How long the lab may take to find a path between every pair before the soak starts. */
const PATHS_TIMEOUT_MS = 180_000;
/** 8 nodes: public, port-preserving, endpoint-dependent and UDP-blocked NATs, so flows go direct and through relays. */
const KINDS: NatKind[] = ['public', 'easy', 'hard', 'public', 'easy', 'hard', 'easy', 'blocked'];

type Role = 'daemon' | 'control' | 'relay';
interface Sample {
  tMs: number;
  proc: string;
  role: Role;
  pid: number;
  rssMb: number;
  fds: number;
}
interface Flow {
  from: LabNode;
  to: LabNode;
  ip: string;
  proc: ChildProcess;
  parser: PingParser;
}

function procSample(pid: number): { rssMb: number; fds: number } | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { rssMb: m ? Number(m[1]) / 1024 : NaN, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return null;
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('npm run soak needs root (network namespaces, TUN): run it with sudo');
    process.exit(1);
  }
  const name = `s${process.pid % 10000}`;
  const progress = await startProgress(`soak: building a lab of ${KINDS.length} nodes (${KINDS.join(', ')})`);
  const lab = await Lab.create({ name, kinds: KINDS, bin: BIN, dir: `/tmp/meshctl-soak-${name}` });
  const flows: Flow[] = [];
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await lab.build({ name, kinds: [], bin: BIN, progress: (m) => progress.step(`soak: ${m}`) });
    await lab.startServers();
    progress.step('soak: meshctl up on every node');
    await lab.upAll();
    const nodes = lab.s.nodes;
    const clients = new Map(nodes.map((n) => [n.name, new LocalClient(lab.socket(n))]));
    const status = async (n: LabNode): Promise<Status> => clients.get(n.name)!.get<Status>(LOCALAPI.status);
    progress.step('soak: waiting for a path between every pair');
    await lab.waitFor('a path between every pair', () => allPathsKnown(lab), PATHS_TIMEOUT_MS);
    const ips = new Map<string, string>();
    for (const n of nodes) ips.set(n.name, (await status(n)).self!.ips[0]!);

    // the flows: every node pings the next, forever, one echo each 200 ms
    for (let i = 0; i < nodes.length; i++) {
      const from = nodes[i]!;
      const to = nodes[(i + 1) % nodes.length]!;
      const ip = ips.get(to.name)!;
      const proc = spawn('ip', ['netns', 'exec', from.ns, 'ping', '-D', '-n', '-i', String(PING_INTERVAL_MS / 1000), ip], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const parser = new PingParser();
      let buf = '';
      proc.stdout!.setEncoding('utf8');
      proc.stdout!.on('data', (c: string) => {
        buf += c;
        let k: number;
        while ((k = buf.indexOf('\n')) >= 0) {
          parser.push(buf.slice(0, k));
          buf = buf.slice(k + 1);
        }
      });
      flows.push({ from, to, ip, proc, parser });
    }

    const daemonPids = new Map(nodes.map((n) => [n.name, lab.s.pids[`${n.name}-daemon`]!]));
    const samples: Sample[] = [];
    const handshakes = new Map<string, { initiated: number; completed: number; failed: number }[]>();
    const crashes: string[] = [];
    const excluded = new Map<string, Span[]>(nodes.map((n) => [n.name, []]));
    const events: { kind: string; tMs: number; ms: number; error?: string }[] = [];
    const t0 = Date.now();
    const load: number[][] = [loadavg()];

    const sample = async (): Promise<void> => {
      const tMs = Date.now();
      const procs: [string, Role, number | undefined][] = [
        ...nodes.map((n) => [n.name, 'daemon', daemonPids.get(n.name)] as [string, Role, number]),
        ['control', 'control', lab.s.pids.control],
        ...Object.keys(lab.s.relayNs).map((r) => [`relay-${r}`, 'relay', lab.s.pids[`relay-${r}`]] as [string, Role, number]),
      ];
      for (const [proc, role, pid] of procs) {
        if (pid === undefined) continue;
        const s = procSample(pid);
        if (s) samples.push({ tMs, proc, role, pid, ...s });
        else if (role === 'daemon' && !crashes.includes(proc)) crashes.push(`${proc}: daemon ${pid} is gone`);
      }
      for (const n of nodes) {
        try {
          const { text } = await clients.get(n.name)!.get<{ text: string }>(LOCALAPI.metrics);
          const h = {
            initiated: metric(text, 'meshctl_daemon_handshakes_initiated_total'),
            completed: metric(text, 'meshctl_daemon_handshakes_completed_total'),
            failed: metric(text, 'meshctl_daemon_handshakes_failed_total'),
          };
          if (!handshakes.has(n.name)) handshakes.set(n.name, []);
          handshakes.get(n.name)!.push(h);
        } catch {
          /* a daemon that does not answer is caught by its pid */
        }
      }
      load.push(loadavg());
    };

    const all = disturbances(lab, nodes, clients, {
      bin: BIN,
      downHoldMs: DOWN_HOLD_MS,
      onDown: (name, from, to) => excluded.get(name)!.push([from, to]),
    });

    const endAt = t0 + MINUTES * 60_000;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sample();
        await sleep(SAMPLE_EVERY_MS);
      }
    })();
    let turn = 0;
    while (Date.now() < endAt && !interrupted) {
      await sleep(EVENT_EVERY_MS);
      const [kind, run] = all[turn++ % all.length]!;
      const start = Date.now();
      try {
        const what = await run();
        events.push({ kind, tMs: start - t0, ms: Date.now() - start });
        const last = samples.filter((s) => s.role === 'daemon').slice(-nodes.length);
        const rss = last.map((s) => s.rssMb);
        progress.step(
          `soak ${f((start - t0) / 1000)} s of ${MINUTES * 60}: ${kind} (${what}) in ${Date.now() - start} ms; ` +
            `daemon RSS ${f(Math.min(...rss), 1)}–${f(Math.max(...rss), 1)} MiB; load ${loadavg()
              .map((x) => x.toFixed(2))
              .join(' ')}`,
        );
      } catch (err) {
        events.push({ kind, tMs: start - t0, ms: Date.now() - start, error: (err as Error).message });
        progress.step(`soak: ${kind} failed: ${(err as Error).message}`);
      }
    }
    // a last quiet stretch, so the last disturbance's window ends inside the run
    await sleep(Math.min(10_000, EVENT_EVERY_MS * 2));
    sampling = false;
    await sampler;
    const stopMs = Date.now();
    for (const fl of flows) fl.proc.kill('SIGINT');
    await progress.end();

    // ---- figures -------------------------------------------------------------
    for (const n of nodes) if (!alive(daemonPids.get(n.name)!) && !crashes.some((c) => c.startsWith(n.name))) crashes.push(`${n.name}: daemon gone`);
    if (!alive(lab.s.pids.control!)) crashes.push('control server gone');
    for (const r of Object.keys(lab.s.relayNs)) if (!alive(lab.s.pids[`relay-${r}`]!)) crashes.push(`relay ${r} gone`);
    const windows: number[] = [];
    const perFlow: { flow: string; sent: number; replies: number; windows: { atS: number; ms: number }[] }[] = [];
    for (const fl of flows) {
      const ex = [...excluded.get(fl.from.name)!, ...excluded.get(fl.to.name)!];
      // a flow is judged from its first reply: the echoes before it wait for the first handshake
      const w = lostWindows(fl.parser.replies, PING_INTERVAL_MS, ex, stopMs);
      windows.push(...w.map((x) => x.ms));
      const seqs = fl.parser.replies.map((r) => r.seq);
      perFlow.push({
        flow: `${fl.from.name}→${fl.to.name}`,
        sent: seqs.length ? Math.max(...seqs) : 0,
        replies: new Set(seqs).size,
        windows: w.map((x) => ({ atS: Math.round((x.fromMs - t0) / 100) / 10, ms: Math.round(x.ms) })),
      });
    }
    const after = samples.filter((s) => s.tMs - t0 >= WARMUP_MS);
    const growth = (proc: string, key: 'rssMb' | 'fds') => slopePerHour(after.filter((s) => s.proc === proc).map((s) => ({ tMs: s.tMs, v: s[key] })));
    const procs = [...new Set(samples.map((s) => s.proc))];
    const table = procs.map((p) => {
      const ss = samples.filter((s) => s.proc === p);
      return {
        proc: p,
        instances: new Set(ss.map((s) => s.pid)).size,
        rssFirstMb: ss.find((s) => s.tMs - t0 >= WARMUP_MS)?.rssMb ?? NaN,
        rssLastMb: ss.at(-1)?.rssMb ?? NaN,
        rssMaxMb: Math.max(...ss.map((s) => s.rssMb)),
        rssSlopeMbPerHour: growth(p, 'rssMb'),
        fdsFirst: ss.find((s) => s.tMs - t0 >= WARMUP_MS)?.fds ?? NaN,
        fdsLast: ss.at(-1)?.fds ?? NaN,
        fdsMax: Math.max(...ss.map((s) => s.fds)),
        fdsSlopePerHour: growth(p, 'fds'),
      };
    });
    const hours = (stopMs - t0) / 3_600_000;
    const hs = nodes.map((n) => {
      const h = handshakes.get(n.name) ?? [];
      return {
        node: n.name,
        initiated: counterIncrease(h.map((x) => x.initiated)),
        completed: counterIncrease(h.map((x) => x.completed)),
        failed: counterIncrease(h.map((x) => x.failed)),
      };
    });
    const failedEvents = events.filter((e) => e.error);
    const over = windows.filter((w) => w > MAX_WINDOW_MS);
    const loadMax = Math.max(...load.map((l) => l[0]!));
    const loadMean = load.reduce((s, l) => s + l[0]!, 0) / load.length;

    console.log(`\nsoak: ${f(hours * 60, 1)} min, ${events.length} disturbances (${failedEvents.length} failed), ${nodes.length} nodes, ${flows.length} flows`);
    console.log(`load average (1 min): mean ${f(loadMean, 2)}, max ${f(loadMax, 2)} on ${(await import('node:os')).cpus().length} CPUs`);
    const kinds = [...new Set(events.map((e) => e.kind))];
    for (const k of kinds) {
      const es = events.filter((e) => e.kind === k);
      console.log(
        `  ${k.padEnd(16)} ${String(es.length).padStart(4)} times, median ${f(
          quantile(
            es.map((e) => e.ms),
            0.5,
          ),
        )} ms`,
      );
    }
    for (const e of failedEvents.slice(0, 10)) console.log(`  failed at ${f(e.tMs / 1000)} s: ${e.kind}: ${e.error}`);
    console.log(
      `lost-traffic windows: ${windows.length}; p50 ${f(quantile(windows, 0.5))} ms, p99 ${f(quantile(windows, 0.99))} ms, ` +
        `max ${f(windows.length ? Math.max(...windows) : 0)} ms (promise ≤ ${MAX_WINDOW_MS} ms: ${over.length === 0 ? 'kept' : `${over.length} over`})`,
    );
    for (const p of perFlow)
      console.log(
        `  ${p.flow.padEnd(28)} ${p.replies}/${p.sent + 1} replies, windows (at s: ms): ${p.windows.map((w) => `${w.atS}: ${w.ms}`).join(', ') || '-'}`,
      );
    console.log(`\nprocess          inst  RSS MiB after warm-up → end (max)   slope MiB/h   fds → end (max)  slope fds/h`);
    for (const r of table)
      console.log(
        `  ${r.proc.padEnd(16)} ${String(r.instances).padStart(3)}  ${f(r.rssFirstMb, 1).padStart(6)} → ${f(r.rssLastMb, 1).padStart(6)} (${f(r.rssMaxMb, 1)})`.padEnd(
          58,
        ) +
          `${f(r.rssSlopeMbPerHour, 2).padStart(8)}   ${String(r.fdsFirst).padStart(4)} → ${String(r.fdsLast).padStart(4)} (${r.fdsMax})`.padEnd(34) +
          `${f(r.fdsSlopePerHour, 1).padStart(8)}`,
      );
    console.log(`(slopes over the samples after the first ${f(WARMUP_MS / 60_000, 1)} min; a restarted server's line spans its instances)`);
    console.log('\nhandshakes over the run (per node: initiated / completed / failed, completed per hour)');
    for (const h of hs) console.log(`  ${h.node.padEnd(16)} ${h.initiated} / ${h.completed} / ${h.failed}   ${f(h.completed / hours)} per hour`);
    console.log(crashes.length ? `crashes: ${crashes.join('; ')}` : 'crashes: none');

    const svg = await drawRss(samples, t0);
    const svgFile = join(packageRoot(), 'docs', 'reliability-soak.svg');
    writeFileSync(svgFile, svg);
    console.log(`RSS over time: ${svgFile}`);
    const dir = join(packageRoot(), 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const date = new Date(t0).toISOString();
    const file = join(dir, `soak-${date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        { date, minutes: MINUTES, eventEveryMs: EVENT_EVERY_MS, kinds: KINDS, load, events, windows, perFlow, table, handshakes: hs, crashes, samples },
        null,
        1,
      ) + '\n',
    );
    console.log(`saved ${file}`);
    if (crashes.length || over.length) process.exitCode = 1;
  } finally {
    for (const fl of flows) if (fl.proc.exitCode === null) fl.proc.kill('SIGKILL');
    // the lab's logs outlive it, for looking into a long window or a crash
    const logs = `/tmp/meshctl-soak-logs-${name}`;
    mkdirSync(logs, { recursive: true });
    for (const e of readdirSync(lab.s.dir)) if (e.endsWith('.log')) copyFileSync(join(lab.s.dir, e), join(logs, e));
    for (const n of lab.s.nodes) {
      try {
        copyFileSync(join(lab.s.dir, n.name, 'daemon.log'), join(logs, `${n.name}.log`));
      } catch {
        /* never started */
      }
    }
    console.error(`lab logs: ${logs}`);
    await tearDown(lab.s);
  }
}

/** RSS over time, one line per process, as SVG (vega, headless). */
async function drawRss(samples: Sample[], t0: number): Promise<string> {
  const values = samples.map((s) => ({ min: (s.tMs - t0) / 60_000, mb: Math.round(s.rssMb * 10) / 10, proc: s.proc }));
  const spec: vega.Spec = {
    $schema: 'https://vega.github.io/schema/vega/v5.json',
    width: 720,
    height: 360,
    padding: 5,
    title: { text: 'meshctl soak: RSS of every daemon, the control server and the relays' },
    data: [{ name: 'rss', values }],
    scales: [
      { name: 'x', type: 'linear', domain: { data: 'rss', field: 'min' }, range: 'width' },
      { name: 'y', type: 'linear', domain: { data: 'rss', field: 'mb' }, range: 'height', nice: true, zero: true },
      { name: 'color', type: 'ordinal', domain: { data: 'rss', field: 'proc' }, range: 'category' },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: 'minutes' },
      { orient: 'left', scale: 'y', title: 'RSS (MiB)' },
    ],
    legends: [{ stroke: 'color', title: 'process' }],
    marks: [
      {
        type: 'group',
        from: { facet: { name: 'series', data: 'rss', groupby: 'proc' } },
        marks: [
          {
            type: 'line',
            from: { data: 'series' },
            encode: {
              enter: {
                x: { scale: 'x', field: 'min' },
                y: { scale: 'y', field: 'mb' },
                stroke: { scale: 'color', field: 'proc' },
                strokeWidth: { value: 1.5 },
              },
            },
          },
        ],
      },
    ],
  };
  return new vega.View(vega.parse(spec), { renderer: 'none' }).toSVG();
}

main().catch((err) => {
  console.error(`soak failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
