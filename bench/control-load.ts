// Load generator for the control plane: N simulated nodes, each with a real
// map stream over HTTPS through the node's own control client (sealed map
// request, strict parser, deltas applied to its copy of the map), against a
// control server in its own process on loopback with a SQLite file. The nodes
// are seeded into the store before the server starts, under a realistic
// access policy:
//   - N/8 users with 7 nodes each on average (autogroup:self: a user's nodes see each other);
//   - group:admins (2 users) reach everything; group:eng (a quarter of the users)
//     reaches tag:server on 443 and 22; 5% of the nodes are tag:server, 2% tag:nas.
// Phases: join (streams opened at --join-rate per second, each a node coming
// online), `policy set` and one endpoint change (time until every affected
// stream holds it, bytes), churn for --churn-seconds (each second 1 node
// registers and joins, 1 logs out, 10 change endpoints; each change timed
// until every node that held the node holds the change), `control nodes list`
// latency, and a check of what the nodes hold against what control builds for
// them (digests of up to 500 nodes' maps). --full-maps: nodes do not ask for deltas.
// --db postgres: the network is in a throwaway PostgreSQL cluster (test/helpers/postgres.ts, needs root)
// instead of SQLite; --replicas R (with --db postgres) runs R control replicas on it, each in its own
// process, node i streaming from replica i mod R: changes made through one (policy, joins, endpoint
// updates) reach the others' nodes through the change log. CPU and RSS are summed over the replicas.
// --restart (one replica): then control is stopped and started again on the same state dir;
// every node's stream ends and reconnects 1 s later plus the client's reconnect spread
// (control-client.ts: up to 1 ms per peer, at most 5 s), a resync storm: the time until every node holds a whole map again, control's CPU
// and peak RSS through it, and the check again.
//   node dist/bench/control-load.js --nodes 1000 [--join-rate 100] [--churn-seconds 20] [--full-maps] [--db postgres] [--replicas 2] [--restart]
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipv6Prefix } from '../src/control/addresses.js';
import { admin } from '../src/control/admin-client.js';
import { createAuthKey } from '../src/control/authkeys.js';
import { setPolicy } from '../src/control/policy.js';
import { Registry } from '../src/control/registry.js';
import { SqliteStore } from '../src/control/sqlite-store.js';
import { PgStore } from '../src/control/pg-store.js';
import type { ControlStore } from '../src/control/store.js';
import { startPostgres, type PgCluster } from '../test/helpers/postgres.js';
import { stateFiles } from '../src/control/state-dir.js';
import { keyToText } from '../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../src/crypto/x25519.js';
import { ControlClient, mapReconnectWindowMs, type MapStream } from '../src/daemon/control-client.js';
import type { NetmapState } from '../src/netmap/delta.js';
import { cpuSeconds, peakRssMb, rssMb } from './procstat.js';
import { mapDigest } from './map-digest.js';
import { checkFdLimit, intArg, LoadNetwork, MAX_NODES, openPaced, pct, sleep, STREAM_IDLE_MS, until as untilWithin, userName } from './load-network.js';
import { insertTestNode } from '../test/helpers/control-seed.js';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { BroadcastTiming } from '../src/control/server.js';

/** No map line on any stream for this long: the network has settled. */
const QUIET_MS = 2000;
/** The most a step may take before the bench gives up. */
const STEP_DEADLINE_MS = 40 * 60_000;
const NAS_PORT = 445;
/** A simulated node whose stream ended opens a new one after this long (the daemon's first backoff step). */
const RECONNECT_MS = 1000;

interface Sim {
  i: number;
  priv: Buffer;
  key: string;
  disco: string;
  endpoints: string[];
  user: string | null;
  tags: string[];
  client?: ControlClient;
  stream?: MapStream;
  /** the node's copy of its map (deltas applied to it) */
  state?: NetmapState;
  maps: number;
  bytes: number;
  /** the stream ended: why */
  ended: string | null;
  /** logged out in the churn phase: no longer expected to hold anything */
  left: boolean;
}

/** A change in the churn phase: the nodes that must see it, and when they did. */
interface Pending {
  kind: 'endpoint' | 'leave';
  nodeId: number;
  /** the new endpoint (kind endpoint) */
  value: string;
  t0: number;
  /** when control answered the request (the change is in its database): propagation proper starts here */
  t1: number | null;
  waiting: Set<Sim>;
  affected: number;
  /** ms from the request to each affected node holding it */
  lat: number[];
  /** ms until the last affected node held it; null while pending */
  done: number | null;
  /** the state number of the line that brought it to the first and to the last of its nodes, and when */
  firstSeq: number | null;
  firstAt: number;
  lastSeq: number | null;
  lastAt: number;
}

/** One broadcast's stage times from control. */
type Timing = BroadcastTiming;

const arg = (name: string, dflt: number, min = 8, max = MAX_NODES): number => intArg(name, dflt, min, max);

const nodes = arg('--nodes', 1000);
checkFdLimit(nodes);
/** streams opened per second in the join phase (each open is a node coming online: a change to every node that sees it) */
const joinRate = arg('--join-rate', 100, 1, 10_000);
/** seconds of churn: each second 1 node joins (registers and opens its stream), 1 logs out, 10 change endpoints */
const churnSeconds = arg('--churn-seconds', 20, 0, 3600);
/** --full-maps: the simulated nodes do not ask for deltas (the old behaviour, for comparison) */
const deltas = !process.argv.includes('--full-maps');
/** --db postgres: the network in PostgreSQL; --replicas: control replicas on it */
const dbKind = process.argv.includes('--db') ? process.argv[process.argv.indexOf('--db') + 1] : 'sqlite';
if (dbKind !== 'sqlite' && dbKind !== 'postgres') throw new Error('--db takes sqlite or postgres');
const replicaCount = arg('--replicas', 1, 1, 8);
if (replicaCount > 1 && dbKind !== 'postgres') throw new Error('--replicas needs --db postgres (replicas share a PostgreSQL database)');
/** --restart: end with a control restart and the resync storm it causes */
const restart = process.argv.includes('--restart');
if (restart && replicaCount > 1) throw new Error('--restart restarts the one control server: run it without --replicas');
/** A node's stream that cannot reopen (control is down) tries again this many times, RECONNECT_MS apart. */
const MAX_REOPEN_ATTEMPTS = 120;
/** the final check compares the maps of at most this many nodes with what control would send them */
const CHECK_SAMPLE = 500;
const CHURN_ENDPOINTS_PER_SEC = 10;
const network = new LoadNetwork(nodes);
const { users, eng } = network;

function policyText(withNas: boolean): string {
  return network.policy({
    acls: withNas ? [{ action: 'accept', src: ['group:eng'], dst: [`tag:nas:${NAS_PORT}`] }] : [],
    tests: [{ src: userName(eng[0]!), accept: ['tag:server:22'], deny: [`tag:nas:${withNas ? 22 : NAS_PORT}`] }],
  });
}

/** the auth key churn joins register with (a user in group:eng) */
let joinKey = '';

async function seed(dir: string, dbUrl: string | null): Promise<Sim[]> {
  const store: ControlStore = dbUrl ? await PgStore.open(dbUrl) : new SqliteStore(stateFiles(dir).db);
  const sims: Sim[] = [];
  try {
    const created = await createAuthKey(store, { reusable: true, ephemeral: false, expiryMs: null, user: userName(eng[0]!) });
    joinKey = created.key;
    const authKeyId = created.record.id;
    await ipv6Prefix(store);
    await store.transaction(async (tx) => {
      for (let i = 0; i < nodes; i++) {
        const priv = generatePrivateKey();
        const sim: Sim = {
          i,
          priv,
          key: keyToText(publicKeyOf(priv)),
          disco: keyToText(publicKeyOf(generatePrivateKey())),
          endpoints: [`198.18.${i >> 8}.${i & 255}:41641`],
          ...network.identity(i),
          maps: 0,
          bytes: 0,
          ended: null,
          left: false,
        };
        sims.push(sim);
        await insertTestNode(tx, i, {
          nodeKey: sim.key,
          discoKey: sim.disco,
          version: 'bench',
          endpoints: sim.endpoints,
          authKeyId,
          createdAtMs: Date.now(),
          user: sim.user,
          tags: sim.tags,
        });
      }
    });
    await setPolicy(await Registry.open(store, { keyExpiryMs: null }), policyText(false));
  } finally {
    await store.close();
  }
  return sims;
}

const unseen = (): Pick<Pending, 'firstSeq' | 'firstAt' | 'lastSeq' | 'lastAt'> => ({ firstSeq: null, firstAt: 0, lastSeq: null, lastAt: 0 });

/**
 * Splits each churn change's propagation by stage, with control's timing of
 * the broadcast whose line brought it to its last node (the first broadcast of
 * that state number): the request (until control answered), answer to that
 * broadcast's start (the broadcast delay, and any broadcast before it, or the
 * last node's stream blocked), the network read, building and writing every
 * line of it, until its lines were flushed to the kernel, and from there until
 * the last node held it (the kernel, then this process reading, decrypting and
 * applying its deltas). Stage p50 and p99 over the changes, then the slowest
 * changes one by one. Clocks are Date.now() in both processes.
 */
function stageBreakdown(pending: Pending[], timings: Timing[]): string {
  const bySeq = new Map<number, Timing>();
  for (const t of timings) if (!bySeq.has(t.seq)) bySeq.set(t.seq, t);
  const rows = pending
    .filter((c) => c.done !== null && c.lastSeq !== null && c.t1 !== null && bySeq.has(c.lastSeq))
    .map((c) => {
      const b = bySeq.get(c.lastSeq!)!;
      const flushed = b.flushedAt ?? b.writtenAt;
      return {
        c,
        b,
        stages: {
          request: c.t1! - c.t0,
          'answer to broadcast': b.startAt - c.t1!,
          snapshot: b.snapshotAt - b.startAt,
          'build and write': b.writtenAt - b.snapshotAt,
          flush: flushed - b.writtenAt,
          'to the first node': c.firstAt - flushed,
          'to the last node': c.lastAt - flushed,
        } as Record<string, number>,
      };
    });
  if (rows.length === 0) return '  stages: no change could be matched with control broadcast timings';
  const names = Object.keys(rows[0]!.stages);
  const lines = [
    `  stages over ${rows.length} of ${pending.length} changes (the broadcast that reached each change's last node), ms p50/p99: ` +
      names
        .map(
          (n) =>
            `${n} ${pct(
              rows.map((r) => r.stages[n]!),
              50,
            ).toFixed(0)}/${pct(
              rows.map((r) => r.stages[n]!),
              99,
            ).toFixed(0)}`,
        )
        .join(', '),
  ];
  const slow = [...rows].sort((a, b) => b.c.done! - a.c.done!).slice(0, Math.max(3, Math.ceil(rows.length / 50)));
  for (const r of slow) {
    const s = r.c.firstSeq === r.c.lastSeq ? '' : ` (its first node in state ${r.c.firstSeq})`;
    lines.push(
      `  slow ${r.c.kind} to ${r.c.affected} nodes, ${r.c.done} ms: ` +
        names.map((n) => `${n} ${r.stages[n]!.toFixed(0)}`).join(', ') +
        `; broadcast of state ${r.b.seq}${s}: ${r.b.deltas} deltas, ${r.b.wholeMaps} whole maps (${(r.b.wholeMapBytes / 1048576).toFixed(1)} MiB),` +
        ` ${r.b.deferredWholeMaps} held back, queued ${r.b.startAt - r.b.queuedAt} ms before it started`,
    );
  }
  return lines.join('\n');
}

const until = (cond: () => boolean, what: string, pollMs = 5): Promise<void> => untilWithin(cond, what, STEP_DEADLINE_MS, pollMs);

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const kb = (b: number): string => (b / 1024).toFixed(1);
const mb = (b: number): string => (b / 1024 / 1024).toFixed(1);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-control-load-'));
  const cluster: PgCluster | null = dbKind === 'postgres' ? await startPostgres() : null;
  const dbUrl = cluster ? await cluster.createDatabase('bench') : null;
  const t0 = Date.now();
  const sims = await seed(dir, dbUrl);
  console.log(
    `control-load: ${nodes} nodes, ${users} users (${eng.length} in group:eng), seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s;` +
      ` ${deltas ? 'deltas' : 'whole maps only'}; ${dbKind}${replicaCount > 1 ? `, ${replicaCount} replicas` : ''}; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
  );
  /** replica k serves state dir k (its own admin socket); the first is `dir` */
  const dirs = [dir, ...Array.from({ length: replicaCount - 1 }, () => mkdtempSync(join(tmpdir(), 'meshctl-control-load-')))];
  const startReplica = (d: string) => {
    const proc = fork(join(dirname(fileURLToPath(import.meta.url)), 'control-serve.js'), [d, String(nodes + churnSeconds + 16), ...(dbUrl ? [dbUrl] : [])], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // --expose-gc for the 'gc' message only: it changes nothing in how V8 collects; the generator's own heap
      // limit (--max-old-space-size, for 10,000 simulated nodes) is not control's
      execArgv: [...process.execArgv.filter((a) => !a.startsWith('--max-old-space-size')), '--expose-gc'],
    });
    const messages: { type: string; [k: string]: unknown }[] = [];
    proc.on('message', (m) => messages.push(m as { type: string }));
    const next = async (type: string): Promise<Record<string, unknown>> => {
      await until(() => messages.some((m) => m.type === type), `control's ${type}`);
      return messages.splice(
        messages.findIndex((m) => m.type === type),
        1,
      )[0]!;
    };
    return { proc, next };
  };
  const replicas = dirs.map(startReplica);
  const child = replicas[0]!.proc;
  const next = replicas[0]!.next;
  /** the streams' counters, summed over the replicas */
  const stats = async (): Promise<Record<string, number>> => {
    const all = await Promise.all(replicas.map(async (r) => (r.proc.send({ type: 'stats' }), (await r.next('stats')) as Record<string, number>)));
    const sum: Record<string, number> = {};
    for (const one of all) for (const [k, v] of Object.entries(one)) if (typeof v === 'number') sum[k] = (sum[k] ?? 0) + v;
    return sum;
  };
  const pids = replicas.map((r) => r.proc.pid!);
  const cpuAll = (): number => pids.reduce((t, p) => t + cpuSeconds(p), 0);
  const rssAll = (): number => pids.reduce((t, p) => t + rssMb(p), 0);
  const peakAll = (): number => pids.reduce((t, p) => t + peakRssMb(p), 0);
  try {
    const ready = await next('ready');
    // one at a time: the first stores the network's identity (control key, certificate), the others take it
    const urls = [`https://127.0.0.1:${ready.port as number}`];
    for (const r of replicas.slice(1)) urls.push(`https://127.0.0.1:${(await r.next('ready')).port as number}`);
    const urlOf = (i: number): string => urls[i % urls.length]!;
    let lastLine = Date.now();
    const pending: Pending[] = [];
    let reconnects = 0;
    let lastEnd = '';
    /** after each map or delta: the bytes, and whether the node now holds what a pending change brought */
    const onState = (s: Sim, state: NetmapState, bytes: number): void => {
      lastLine = Date.now();
      s.maps++;
      s.bytes += bytes;
      s.state = state;
      for (const c of pending) {
        if (c.done !== null || !c.waiting.has(s)) continue;
        const v = state.selfView?.id === c.nodeId ? state.selfView : state.peer(c.nodeId);
        const holds = c.kind === 'leave' ? v === undefined : v?.endpoints[0] === c.value;
        if (!holds) continue;
        c.waiting.delete(s);
        const now = Date.now();
        c.lat.push(now - (c.t1 ?? c.t0));
        if (c.firstSeq === null) {
          c.firstSeq = state.seq;
          c.firstAt = now;
        }
        c.lastSeq = state.seq;
        c.lastAt = now;
        if (c.waiting.size === 0) c.done = now - c.t0;
      }
    };
    const open = async (s: Sim): Promise<void> => {
      s.client = new ControlClient(urlOf(s.i), ready.certPem as string, s.priv);
      s.stream = await s.client.openMap({ endpoints: s.endpoints, discoKey: s.disco }, () => {}, STREAM_IDLE_MS, {
        deltas,
        onState: (state, bytes) => onState(s, state, bytes),
        onRefused: (msg) => console.log(`  node ${s.i}: ${msg}`),
      });
      void s.stream.done.then((d) => {
        if (s.left) return;
        // as the daemon does: a stream that ended (a delta refused, a connection cut while this process starves) reconnects
        reconnects++;
        lastEnd = d.error?.message ?? d.gone ?? 'closed';
        const reopen = (attempt: number): void => {
          setTimeout(
            () =>
              void open(s)
                .then(() => (s.ended = null))
                .catch((err: Error) => {
                  s.ended = err.message;
                  if (attempt < MAX_REOPEN_ATTEMPTS) reopen(attempt + 1);
                }),
            // a new client each time: the spread the old one would have held its next stream back is waited here
            RECONNECT_MS + (attempt === 1 ? d.spreadMs : 0),
          );
        };
        reopen(1);
      });
    };

    // join: streams opened at joinRate per second, each a node coming online
    const connectStart = Date.now();
    const cpu0 = cpuAll();
    const gen0 = process.cpuUsage();
    const pace = { opened: 0 };
    const progress = setInterval(() => {
      const ended = sims.filter((s) => s.ended !== null);
      const why = ended.length ? `; ${ended.length} ended, e.g. ${ended[0]!.ended}` : '';
      console.log(
        `  ${((Date.now() - connectStart) / 1000).toFixed(0)} s: ${pace.opened} opened, ${sims.filter((s) => s.maps > 0).length} streams with a map${why};` +
          ` control RSS ${rssAll().toFixed(0)} MiB`,
      );
    }, 15_000);
    await openPaced(sims, joinRate, connectStart, open, pace);
    await until(() => sims.every((s) => s.maps > 0), 'first maps');
    clearInterval(progress);
    const connected = (Date.now() - connectStart) / 1000;
    await until(() => Date.now() - lastLine > QUIET_MS, 'quiet after connecting', 50);
    const settled = (Date.now() - connectStart - QUIET_MS) / 1000;
    const genJoin = process.cpuUsage(gen0);
    console.log(
      `join: ${nodes} streams at ${joinRate}/s offered: all had a first map after ${connected.toFixed(1)} s (${(nodes / connected).toFixed(0)} joins/s),` +
        ` settled at ${settled.toFixed(1)} s; ${mb(sum(sims.map((s) => s.bytes)))} MiB of maps and deltas;` +
        ` control CPU ${(cpuAll() - cpu0).toFixed(1)} s, RSS ${rssAll().toFixed(0)} MiB; generator CPU ${((genJoin.user + genJoin.system) / 1e6).toFixed(1)} s`,
    );
    const memory = async (): Promise<string> => {
      const m = await stats();
      const per = (b: number): string => (b / Math.max(1, m.streams!) / 1024).toFixed(0);
      return (
        `${m.streams} streams; V8 heap ${mb(m.heapUsed!)} MiB used of ${mb(m.heapTotal!)} MiB (${per(m.heapUsed!)} KiB used per stream),` +
        ` native (RSS less the V8 heap and external) ${mb(m.rss! - m.heapTotal! - m.external!)} MiB (${per(m.rss! - m.heapTotal! - m.external!)} KiB per stream), external ${mb(m.external!)} MiB` +
        ` (buffers ${mb(m.arrayBuffers!)} MiB), unsent on streams ${mb(m.unsentBytes!)} MiB, RSS ${mb(m.rss!)} MiB (${per(m.rss!)} KiB per stream);` +
        ` peak RSS so far ${peakAll().toFixed(0)} MiB; whole maps held back by the in-flight budget ${m.deferredWholeMaps ?? 'n/a'}, most whole-map bytes in flight ${m.peakWholeMapBytesInFlight === undefined ? 'n/a' : mb(m.peakWholeMapBytesInFlight)} MiB`
      );
    };
    console.log(`  control memory after the join: ${await memory()}`);

    const step = async (name: string, act: () => Promise<unknown>, affected: Sim[], done: (s: Sim) => boolean): Promise<void> => {
      const maps0 = sims.map((s) => s.maps);
      const bytes0 = sims.map((s) => s.bytes);
      const c0 = cpuAll();
      const start = process.hrtime.bigint();
      await act();
      await until(() => affected.every(done), `${name}: every affected stream`, 1);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      await until(() => Date.now() - lastLine > QUIET_MS, `${name}: quiet`, 50);
      const cpu = cpuAll() - c0;
      const got = sims.filter((s, i) => s.maps > maps0[i]!);
      const bytes = sum(sims.map((s, i) => s.bytes - bytes0[i]!));
      console.log(
        `${name}: all ${affected.length} affected nodes held it in ${ms.toFixed(0)} ms; ${got.length} of ${nodes} streams got a line` +
          ` (${got.length - affected.length} beyond the affected); ${kb(bytes)} KiB in all, ${(bytes / Math.max(1, got.length)).toFixed(0)} B per node that got one;` +
          ` control CPU ${cpu.toFixed(2)} s (incl. ${QUIET_MS / 1000} s quiet), RSS ${rssAll().toFixed(0)} MiB`,
      );
    };
    const idOf = (s: Sim): number => s.state!.selfView!.id;
    const holdsPeer = (s: Sim, id: number): boolean => s.state?.peer(id) !== undefined;

    // group:eng may now reach tag:nas on 445: the NAS nodes' filters and the eng nodes' peers change
    const engUsers = new Set(eng.map(userName));
    const nas = sims.filter((s) => s.tags.includes('tag:nas'));
    const engNodes = sims.filter((s) => s.user !== null && engUsers.has(s.user));
    const nasIds = new Set(nas.map(idOf));
    await step(
      'policy set',
      () => admin.setPolicy(dir, policyText(true)),
      [...nas, ...engNodes],
      (s) => {
        const m = s.state!;
        if (nasIds.has(idOf(s))) return (m.toMap().packetFilter ?? []).some((r) => r.dstPorts.some((d) => d.first === NAS_PORT));
        return [...nasIds].some((id) => holdsPeer(s, id));
      },
    );

    console.log(`  control memory after the policy set: ${await memory()}`);

    // one endpoint change: the moved node itself, and every node whose map shows it
    const target = sims.find((s) => s.user === userName(eng[0]!))!;
    const targetId = idOf(target);
    const seeing = sims.filter((s) => s === target || holdsPeer(s, targetId));
    const moved = '203.0.113.7:41641';
    await step(
      'endpoint change',
      () => target.client!.call('endpoints', { endpoints: [moved], homeRelay: null }, 60_000),
      seeing,
      (s) => (s === target ? s.state!.selfView!.endpoints.includes(moved) : s.state!.peer(targetId)?.endpoints.includes(moved) === true),
    );

    // churn: each second 1 join, 1 leave, CHURN_ENDPOINTS_PER_SEC endpoint changes; each change's propagation is timed
    if (churnSeconds > 0) {
      // the generator's own event loop: a turn that waits long here delays every node's reading of its stream
      const loopDelay = monitorEventLoopDelay({ resolution: 10 });
      loopDelay.enable();
      const c0 = cpuAll();
      const g0 = process.cpuUsage();
      const bytes0 = sum(sims.map((s) => s.bytes));
      const s0 = await stats();
      const churnStart = Date.now();
      let joined = 0;
      let port = 20_000;
      const alive = (): Sim[] => sims.filter((s) => !s.left && s.state !== undefined && s.ended === null);
      const errors: string[] = [];
      for (let sec = 0; sec < churnSeconds; sec++) {
        const tick = churnStart + sec * 1000;
        if (tick > Date.now()) await sleep(tick - Date.now());
        const live = alive();
        const busy = new Set(pending.filter((c) => c.done === null).map((c) => c.nodeId));
        const pickLive = (): Sim => {
          for (;;) {
            const s = live[Math.floor(Math.random() * live.length)]!;
            if (!busy.has(idOf(s)) && s !== target) return s;
          }
        };
        // a join: a new node registers with the eng user's key and opens its stream
        const priv = generatePrivateKey();
        const sim: Sim = {
          i: sims.length,
          priv,
          key: keyToText(publicKeyOf(priv)),
          disco: keyToText(publicKeyOf(generatePrivateKey())),
          endpoints: [`198.19.${joined >> 8}.${joined & 255}:41641`],
          user: userName(eng[0]!),
          tags: [],
          maps: 0,
          bytes: 0,
          ended: null,
          left: false,
        };
        joined++;
        sims.push(sim);
        const c = new ControlClient(urlOf(sim.i), ready.certPem as string, priv);
        void c
          .call('register', { authKey: joinKey, hostname: `j${joined}`, os: 'linux', version: 'bench', discoKey: sim.disco, endpoints: sim.endpoints }, 60_000)
          .then(() => open(sim))
          .catch((err: Error) => errors.push(`join: ${err.message}`));
        // a leave: a node logs out; every node that held it must drop it
        const leaver = pickLive();
        busy.add(idOf(leaver));
        const lc: Pending = {
          kind: 'leave',
          nodeId: idOf(leaver),
          value: '',
          t0: Date.now(),
          t1: null,
          waiting: new Set(),
          affected: 0,
          lat: [],
          done: null,
          ...unseen(),
        };
        for (const s of live) if (s !== leaver && holdsPeer(s, lc.nodeId)) lc.waiting.add(s);
        lc.affected = lc.waiting.size;
        leaver.left = true;
        pending.push(lc);
        void leaver
          .client!.call('logout', {}, 60_000)
          .then(() => {
            lc.t1 = Date.now();
            leaver.stream?.close();
          })
          .catch((err: Error) => errors.push(`leave: ${err.message}`));
        // endpoint changes: the node itself and every node that holds it must see the new endpoint
        for (let k = 0; k < CHURN_ENDPOINTS_PER_SEC; k++) {
          const mover = pickLive();
          busy.add(idOf(mover));
          const value = `203.0.113.${1 + (port % 250)}:${port++}`;
          const ec: Pending = {
            kind: 'endpoint',
            nodeId: idOf(mover),
            value,
            t0: Date.now(),
            t1: null,
            waiting: new Set([mover]),
            affected: 0,
            lat: [],
            done: null,
            ...unseen(),
          };
          for (const s of live) if (s !== mover && holdsPeer(s, ec.nodeId)) ec.waiting.add(s);
          ec.affected = ec.waiting.size;
          pending.push(ec);
          void mover
            .client!.call('endpoints', { endpoints: [value], homeRelay: null }, 60_000)
            .then(() => (ec.t1 ??= Date.now()))
            .catch((err: Error) => errors.push(`endpoints: ${err.message}`));
        }
      }
      // a node that left or whose stream ended can no longer be waited for
      await until(
        () => {
          for (const c of pending) {
            for (const s of c.waiting) if (s.left || s.ended !== null) c.waiting.delete(s);
            // every node still there held it when the last of them did (not when a node that left stopped being waited for)
            if (c.done === null && c.waiting.size === 0) c.done = (c.lastAt > 0 ? c.lastAt : Date.now()) - c.t0;
          }
          return pending.every((c) => c.done !== null);
        },
        'churn: every change everywhere',
        20,
      );
      await until(() => Date.now() - lastLine > QUIET_MS, 'churn: quiet', 50);
      loopDelay.disable();
      const s1 = await stats();
      const g = process.cpuUsage(g0);
      const churnCpu = cpuAll() - c0;
      const wall = (Date.now() - churnStart) / 1000;
      const eps = pending.filter((c) => c.kind === 'endpoint');
      const leaves = pending.filter((c) => c.kind === 'leave');
      const lat = pending.flatMap((c) => c.lat);
      const req = pending.filter((c) => c.t1 !== null).map((c) => c.t1! - c.t0);
      const fromAnswer = pending.map((c) => c.done! - ((c.t1 ?? c.t0) - c.t0));
      const epAffected = sum(eps.map((c) => c.affected));
      console.log(
        `churn: ${churnSeconds} s of 1 join + 1 leave + ${CHURN_ENDPOINTS_PER_SEC} endpoint changes per second (${eps.length} endpoint changes reaching` +
          ` ${(epAffected / Math.max(1, eps.length)).toFixed(0)} nodes each on average, ${leaves.length} leaves, ${joined} joins${errors.length ? `, ${errors.length} errors, e.g. ${errors[0]}` : ''})`,
      );
      console.log(
        `  propagation of a change to all its nodes: p50 ${pct(
          pending.map((c) => c.done!),
          50,
        ).toFixed(0)} ms, p99 ${pct(
          pending.map((c) => c.done!),
          99,
        ).toFixed(0)} ms, max ${Math.max(...pending.map((c) => c.done!)).toFixed(0)} ms;` +
          ` the request itself (new TLS connection, sealed box, database write): p50 ${pct(req, 50).toFixed(0)} ms, p99 ${pct(req, 99).toFixed(0)} ms;` +
          ` from control's answer to all nodes: p50 ${pct(fromAnswer, 50).toFixed(0)} ms, p99 ${pct(fromAnswer, 99).toFixed(0)} ms;` +
          ` to one node: p50 ${pct(lat, 50).toFixed(0)} ms, p99 ${pct(lat, 99).toFixed(0)} ms`,
      );
      for (const kind of ['endpoint', 'leave'] as const) {
        const cs = pending.filter((c) => c.kind === kind);
        const slow = cs.reduce((a, c) => (c.done! > a.done! ? c : a), cs[0]!);
        console.log(
          `  ${kind}: to all its nodes p50 ${pct(
            cs.map((c) => c.done!),
            50,
          ).toFixed(0)} ms, p99 ${pct(
            cs.map((c) => c.done!),
            99,
          ).toFixed(0)} ms; the slowest (${slow.done} ms) reached ${slow.affected} nodes, ${slow.lat.filter((l) => l > 2000).length} of them after 2 s`,
        );
      }
      child.send({ type: 'broadcasts' });
      const timings = (await next('broadcasts')).timings as Timing[];
      console.log(stageBreakdown(pending, timings));
      console.log(
        `  generator event loop delay during the churn: p50 ${(loopDelay.percentile(50) / 1e6).toFixed(0)} ms, p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms,` +
          ` max ${(loopDelay.max / 1e6).toFixed(0)} ms`,
      );
      const received = sum(sims.map((s) => s.bytes)) - bytes0;
      console.log(
        `  bytes: ${mb(received)} MiB received by the nodes, ${(received / Math.max(1, sum(pending.map((c) => c.affected)))).toFixed(0)} B per change per affected node` +
          ` (joins' first maps included); server: ${(s1.deltasWritten ?? 0) - (s0.deltasWritten ?? 0)} deltas (${mb((s1.deltaBytes ?? 0) - (s0.deltaBytes ?? 0))} MiB),` +
          ` ${(s1.mapsWritten ?? 0) - (s0.mapsWritten ?? 0) - ((s1.deltasWritten ?? 0) - (s0.deltasWritten ?? 0))} whole maps, ${(s1.deltaResyncs ?? 0) - (s0.deltaResyncs ?? 0)} resyncs`,
      );
      console.log(`  control memory after the churn: ${await memory()}`);
      child.send({ type: 'gc' });
      const gc = (await next('gc')) as Record<string, number>;
      console.log(
        `  a full GC then: V8 heap used ${mb(gc.before!)} -> ${mb(gc.after!)} MiB (the rest was garbage not yet collected), RSS ${mb(gc.rssBefore!)} -> ${mb(gc.rssAfter!)} MiB`,
      );
      console.log(
        `  control CPU ${churnCpu.toFixed(1)} s over ${wall.toFixed(1)} s (${((100 * churnCpu) / wall).toFixed(0)} % of a core), RSS ${rssAll().toFixed(0)} MiB;` +
          ` generator CPU ${((g.user + g.system) / 1e6).toFixed(1)} s`,
      );
    }

    // the operator's view while all these streams are open
    const listMs: number[] = [];
    let listed = 0;
    for (let k = 0; k < 3; k++) {
      const t = process.hrtime.bigint();
      listed = (await admin.listNodes(dir)).length;
      listMs.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    console.log(`control nodes list: ${listed} nodes in ${Math.min(...listMs).toFixed(0)}-${Math.max(...listMs).toFixed(0)} ms (3 runs)`);

    // what each node holds against what control would send it now (a sample beyond CHECK_SAMPLE nodes)
    await until(() => Date.now() - lastLine > QUIET_MS, 'quiet before the check', 50);
    const live = sims.filter((s) => !s.left && s.state?.selfView && s.ended === null);
    const sample = live.length <= CHECK_SAMPLE ? live : live.filter((_, k) => k % Math.ceil(live.length / CHECK_SAMPLE) === 0);
    // the check builds every sampled map at once inside control (bench-only work): the serving peak is the one before it
    console.log(`control: peak RSS before the check ${peakAll().toFixed(0)} MiB`);
    child.send({ type: 'digests', ids: sample.map(idOf) });
    const want = new Map((await next('digests')).digests as [number, string][]);
    // the check's snapshot may have caught a change not yet pushed: let it arrive
    await until(() => Date.now() - lastLine > QUIET_MS, 'quiet after the check', 50);
    const wrong = sample.filter((s) => want.get(idOf(s)) !== mapDigest(s.state!.toMap()));
    console.log(
      `check: ${sample.length - wrong.length} of ${sample.length} nodes (of ${live.length} connected) hold exactly the map control builds for them` +
        (wrong.length ? `; differ: ${wrong.slice(0, 5).map(idOf).join(', ')}` : ''),
    );
    const ended = sims.filter((s) => s.ended !== null && !s.left);
    if (ended.length) console.log(`  ${ended.length} streams ended and could not reopen, e.g. ${ended[0]!.ended}`);
    if (reconnects) console.log(`  ${reconnects} streams ended and reconnected (whole map again), the last: ${lastEnd}`);
    if (restart) {
      const maps0 = new Map(live.map((s) => [s, s.maps]));
      console.log(
        `restart: control stopped (peak RSS so far ${peakAll().toFixed(0)} MiB); ${live.length} nodes will reconnect ${RECONNECT_MS} ms after their stream ends plus a spread of up to ${mapReconnectWindowMs(live.length)} ms`,
      );
      const old = replicas[0]!;
      old.proc.send({ type: 'stop' });
      await Promise.race([new Promise((r) => old.proc.once('exit', r)), sleep(10_000)]);
      old.proc.kill();
      const t0 = Date.now();
      const fresh = startReplica(dir);
      replicas[0] = fresh;
      pids[0] = fresh.proc.pid!;
      urls[0] = `https://127.0.0.1:${(await fresh.next('ready')).port as number}`;
      const up = Date.now() - t0;
      const c0 = cpuAll();
      let maxRss = 0;
      let maxUnsent = 0;
      const sampler = setInterval(() => {
        maxRss = Math.max(maxRss, rssAll());
        void stats()
          .then((m) => (maxUnsent = Math.max(maxUnsent, m.unsentBytes ?? 0)))
          .catch(() => {});
      }, 1000);
      // counted from here, control being up again: a stream that ends now was cut during the resync (liveness, unsent limit)
      const ends0 = reconnects;
      // every 15 s: how far the resync is
      const restartProgress = setInterval(() => {
        const synced = live.filter((s) => s.maps > maps0.get(s)!).length;
        console.log(`  ${((Date.now() - t0) / 1000).toFixed(0)} s: ${synced} of ${live.length} synced; ${reconnects - ends0} streams cut since control was up`);
      }, 15_000);
      await until(() => live.every((s) => s.maps > maps0.get(s)!), 'restart: every node synced', 20);
      const synced = (Date.now() - t0) / 1000;
      clearInterval(sampler);
      clearInterval(restartProgress);
      console.log(`  ${reconnects - ends0} streams cut and reconnected after control was up again (${live.length} nodes)`);
      await until(() => Date.now() - lastLine > QUIET_MS, 'restart: quiet', 50);
      const m = await stats();
      console.log(
        `restart: control up in ${up} ms; all ${live.length} nodes held a whole map again ${synced.toFixed(1)} s after the restart;` +
          ` control CPU ${(cpuAll() - c0).toFixed(1)} s, peak RSS ${peakAll().toFixed(0)} MiB (sampled max ${maxRss.toFixed(0)} MiB),` +
          ` most unsent on all streams at once ${mb(maxUnsent)} MiB; first maps held back for a later broadcast ${m.deferredFirstMaps ?? 'n/a'}`,
      );
      console.log(`  control memory after the resync: ${await memory()}`);
      fresh.proc.send({ type: 'digests', ids: sample.map(idOf) });
      const want2 = new Map((await fresh.next('digests')).digests as [number, string][]);
      await until(() => Date.now() - lastLine > QUIET_MS, 'quiet after the check', 50);
      const wrong2 = sample.filter((s) => want2.get(idOf(s)) !== mapDigest(s.state!.toMap()));
      console.log(`  check after the restart: ${sample.length - wrong2.length} of ${sample.length} sampled nodes hold exactly the map control builds for them`);
    }
    const gen = process.cpuUsage();
    console.log(
      `control: peak RSS ${peakAll().toFixed(0)} MiB; generator CPU ${((gen.user + gen.system) / 1e6).toFixed(1)} s, RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB;` +
        ` load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}`,
    );
  } finally {
    for (const r of replicas) r.proc.send({ type: 'stop' });
    await Promise.race([Promise.all(replicas.map((r) => new Promise((res) => r.proc.once('exit', res)))), sleep(10_000)]);
    for (const r of replicas) r.proc.kill();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await cluster?.stop();
  }
  process.exit(0);
}

await main();
