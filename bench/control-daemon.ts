// One real daemon among N simulated nodes (needs root): the control server of
// bench/control-serve.ts on a veth address, N simulated nodes with real map
// streams (the node's own ControlClient, deltas) as in bench/control-load.ts,
// and one real `meshctl` daemon with its TUN in a namespace of its own, joined
// as an admin's node so that its map holds every node. Figures: the daemon's
// CPU to apply the first full map and its RSS after it, how long a change at
// control takes to reach the daemon's peer table (a node's map stream closed
// or opened, timed to the daemon's "peers:" log line), its CPU over those
// changes, and `meshctl status` / `status --json` wall time.
//   node dist/bench/control-daemon.js --nodes 5000 [--changes 40] [--join-rate 100] [--cpu-prof DIR]
// --cpu-prof DIR: the daemon runs under node --cpu-prof and writes its profile into DIR when it stops at the end; the
// bench prints the changes' window in V8's profile clock for `node dist/bench/cpu-profile.js --summarise FILE --window A B`.
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipv6Prefix } from '../src/control/addresses.js';
import { createAuthKey } from '../src/control/authkeys.js';
import { setPolicy } from '../src/control/policy.js';
import { Registry } from '../src/control/registry.js';
import { SqliteStore } from '../src/control/sqlite-store.js';
import { stateFiles } from '../src/control/state-dir.js';
import { keyToText } from '../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../src/crypto/x25519.js';
import { ControlClient, type MapStream } from '../src/daemon/control-client.js';
import { Lab, must, sh } from '../test/helpers/netns.js';
import { cpuSeconds, rssMb } from './procstat.js';
import {
  checkFdLimit,
  intArg,
  LoadNetwork,
  loadAverage,
  MAX_NODES,
  openPaced,
  pct,
  sleep,
  STREAM_IDLE_MS,
  until as untilWithin,
  userName,
} from './load-network.js';
import { insertTestNode } from '../test/helpers/control-seed.js';

/** The most one step may take before the bench gives up. */
const STEP_DEADLINE_MS = 20 * 60_000;
/** The daemon's CPU time grew by less than SETTLE_IDLE_SHARE of this window: it has finished applying. */
const SETTLE_QUIET_MS = 3000;
/**
 * An idle daemon still uses a little CPU (its endpoint poll every second, a profiler's sampling under --cpu-prof: ~4 % at
 * 2,000 peers), so "settled" is under 10 % of one core over the window, not no growth at all.
 */
const SETTLE_IDLE_SHARE = 0.1;
/** A quiet spell after the changes: the daemon's idle release runs 10-15 s after its tunnel goes quiet. */
const QUIET_MS = 30_000;
/** `status` runs per form, to report the fastest and the slowest. */
const STATUS_RUNS = 5;

const arg = intArg;
const nodes = arg('--nodes', 1000, 8, MAX_NODES);
checkFdLimit(nodes);
const changes = arg('--changes', 40, 2, 1000);
const joinRate = arg('--join-rate', 100, 1, 10_000);
const profIdx = process.argv.indexOf('--cpu-prof');
const profDir = profIdx >= 0 ? process.argv[profIdx + 1] : undefined;
if (profIdx >= 0 && !profDir) throw new Error('--cpu-prof DIR: name the directory the daemon writes its profile into');
/** CLOCK_MONOTONIC in microseconds: the clock of V8's profile timestamps. */
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
const network = new LoadNetwork(nodes);
const { eng } = network;
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'meshctl');

/** CPU seconds of this process's children that have been waited for (the CLI processes the bench ran): /proc/self/stat cutime + cstime. */
function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

const until = (cond: () => boolean, what: string, pollMs = 5): Promise<void> => untilWithin(cond, what, STEP_DEADLINE_MS, pollMs);
const load = loadAverage;

interface Sim {
  priv: Buffer;
  disco: string;
  endpoints: string[];
  client?: ControlClient;
  stream?: MapStream;
  maps: number;
}

/** The same network and policy as bench/control-load.ts; the returned key joins a node of user0 (group:admins: it sees all). */
async function seed(dir: string): Promise<{ sims: Sim[]; adminKey: string }> {
  const store = new SqliteStore(stateFiles(dir).db);
  const sims: Sim[] = [];
  try {
    const created = await createAuthKey(store, { reusable: true, ephemeral: false, expiryMs: null, user: userName(eng[0]!) });
    const admin = await createAuthKey(store, { reusable: true, ephemeral: false, expiryMs: null, user: userName(0) });
    await ipv6Prefix(store);
    await store.transaction(async (tx) => {
      for (let i = 0; i < nodes; i++) {
        const priv = generatePrivateKey();
        const sim: Sim = { priv, disco: keyToText(publicKeyOf(generatePrivateKey())), endpoints: [`198.18.${i >> 8}.${i & 255}:41641`], maps: 0 };
        sims.push(sim);
        await insertTestNode(tx, i, {
          nodeKey: keyToText(publicKeyOf(priv)),
          discoKey: sim.disco,
          version: 'bench',
          endpoints: sim.endpoints,
          authKeyId: created.record.id,
          createdAtMs: Date.now(),
          ...network.identity(i),
        });
      }
    });
    await setPolicy(await Registry.open(store, { keyExpiryMs: null }), network.policy());
    return { sims, adminKey: admin.key };
  } finally {
    await store.close();
  }
}

/** The daemon's "peers: A added, R removed, N in all" log lines, with their time. */
interface PeerLine {
  atMs: number;
  added: number;
  removed: number;
  total: number;
  applyMs: number;
}
function readPeerLines(file: string): PeerLine[] {
  if (!existsSync(file)) return [];
  const out: PeerLine[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\S+) meshctl daemon: peers: (\d+) added, (\d+) removed, (\d+) in all \(map applied in ([\d.]+) ms\)/.exec(line);
    if (m) out.push({ atMs: Date.parse(m[1]!), added: Number(m[2]), removed: Number(m[3]), total: Number(m[4]), applyMs: Number(m[5]) });
  }
  return out;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('control-daemon: needs root (a namespace, a TUN device)');
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-control-daemon-'));
  const lab = new Lab();
  let child: ReturnType<typeof fork> | null = null;
  // interrupted: the control process goes, and the exit handler of test/helpers/netns.ts removes the namespace
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => (child?.kill(), process.exit(130)));
  try {
    const t0 = Date.now();
    const { sims, adminKey } = await seed(dir);
    console.log(`control-daemon: ${nodes} simulated nodes seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s; load average ${load()}`);
    // the daemon's namespace, a veth to this one: control listens on our end
    const ns = await lab.netns('bd');
    const octet = 1 + (Number.parseInt(lab.id.slice(2, 4), 16) % 250);
    const [here, there] = [`v${lab.id.slice(2)}h`, `v${lab.id.slice(2)}t`];
    await must('ip', ['link', 'add', here, 'type', 'veth', 'peer', 'name', there, 'netns', ns]);
    lab.onCleanup(() => void sh('ip', ['link', 'del', here]));
    await must('ip', ['addr', 'add', `10.231.${octet}.1/30`, 'dev', here]);
    await must('ip', ['link', 'set', here, 'up']);
    await must('ip', ['-n', ns, 'addr', 'add', `10.231.${octet}.2/30`, 'dev', there]);
    await must('ip', ['-n', ns, 'link', 'set', there, 'up']);
    lab.resolvConf(ns, '# control-daemon bench: no resolver\n');

    child = fork(join(dirname(fileURLToPath(import.meta.url)), 'control-serve.js'), [dir, String(nodes + changes + 16), '', `10.231.${octet}.1`], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = await new Promise<{ port: number; certPem: string }>((resolve) =>
      child!.on('message', (m: { type: string; port: number; certPem: string }) => m.type === 'ready' && resolve(m)),
    );
    const url = `https://10.231.${octet}.1:${ready.port}`;
    const open = async (s: Sim): Promise<void> => {
      s.client ??= new ControlClient(url, ready.certPem, s.priv);
      s.stream = await s.client.openMap({ endpoints: s.endpoints, discoKey: s.disco }, () => {}, STREAM_IDLE_MS, {
        onState: () => void s.maps++,
      });
    };
    const joinStart = Date.now();
    await openPaced(sims, joinRate, joinStart, open);
    await until(() => sims.every((s) => s.maps > 0), 'first maps of the simulated nodes', 20);
    console.log(`join: ${nodes} simulated streams with a map after ${((Date.now() - joinStart) / 1000).toFixed(1)} s; load average ${load()}`);

    // the real daemon joins as user0's node
    const caFile = join(dir, 'control-ca.pem');
    writeFileSync(caFile, ready.certPem);
    const stateDir = join(dir, 'daemon');
    const socket = join(dir, 'daemon.sock');
    const profEnv = profDir ? [`MESHCTL_DAEMON_NODE_ARGS=--cpu-prof --cpu-prof-dir=${profDir}`] : [];
    const cli = (args: string[], timeoutMs = 120_000) =>
      sh(
        'ip',
        ['netns', 'exec', ns, 'env', `MESHCTL_CONFIG_DIR=${join(dir, 'cli')}`, ...profEnv, process.execPath, BIN, '--socket', socket, ...args],
        timeoutMs,
      );
    const upStart = Date.now();
    const up = await cli([
      'up',
      '--login-server',
      url,
      '--control-ca',
      caFile,
      '--auth-key',
      adminKey,
      '--hostname',
      'real',
      '--state-dir',
      stateDir,
      '--ifname',
      'meshbd0',
      '--timeout',
      '120s',
    ]);
    if (up.code !== 0) throw new Error(`up: ${up.stderr.trim()}`);
    const upMs = Date.now() - upStart;
    const pids = (await sh('ip', ['netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean).map(Number);
    const pid = pids.find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('daemon'));
    if (!pid) throw new Error('the daemon process was not found in its namespace');
    const logFile = join(stateDir, 'daemon.log');
    // settled: the daemon's CPU time grew by less than SETTLE_IDLE_SHARE of a core over SETTLE_QUIET_MS
    let last = cpuSeconds(pid);
    let quietSince = Date.now();
    await until(
      () => {
        const c = cpuSeconds(pid);
        const window = Date.now() - quietSince;
        if (window < SETTLE_QUIET_MS) return false;
        if (c - last < (SETTLE_IDLE_SHARE * window) / 1000) return true;
        last = c;
        quietSince = Date.now();
        return false;
      },
      'the daemon settling',
      100,
    );
    const first = readPeerLines(logFile);
    console.log(
      `daemon: up in ${upMs} ms; ${first.at(-1)?.total ?? '?'} peers in its table after the full map; CPU ${cpuSeconds(pid).toFixed(2)} s since start` +
        ` (start-up, registration, the full map); RSS ${rssMb(pid).toFixed(0)} MiB; load average ${load()}`,
    );

    // status and status --json wall time (a new CLI process each, as a user runs it)
    // CPU seconds as well as wall time: at a high load average the wall time is mostly the machine's run queue
    for (const form of [['status'], ['status', '--json']]) {
      const ms: number[] = [];
      const cliCpu: number[] = [];
      const daemonCpu0 = cpuSeconds(pid);
      let bytes = 0;
      for (let k = 0; k < STATUS_RUNS; k++) {
        const t = Date.now();
        const c0 = childrenCpuSeconds();
        const r = await cli(form, 60_000);
        ms.push(Date.now() - t);
        cliCpu.push(childrenCpuSeconds() - c0);
        if (r.code !== 0) throw new Error(`${form.join(' ')}: ${r.stderr.trim()}`);
        bytes = r.stdout.length;
      }
      const daemonMs = ((cpuSeconds(pid) - daemonCpu0) * 1000) / STATUS_RUNS;
      console.log(
        `meshctl ${form.join(' ')}: ${Math.min(...ms)}-${Math.max(...ms)} ms wall (${STATUS_RUNS} runs, ${(bytes / 1024).toFixed(0)} KiB out); CPU a run: CLI process` +
          ` ${(Math.min(...cliCpu) * 1000).toFixed(0)}-${(Math.max(...cliCpu) * 1000).toFixed(0)} ms, daemon ${daemonMs.toFixed(0)} ms; load average ${load()}`,
      );
    }

    // changes: a simulated node's stream closed (the node goes offline), then opened again (online): each timed to the daemon's line
    const cpu0 = cpuSeconds(pid);
    const rss0 = rssMb(pid);
    const window0 = monoUs();
    const lat: number[] = [];
    const apply: number[] = [];
    for (let k = 0; k < changes; k++) {
      const s = sims[(k >> 1) * 7 + 3]!;
      const before = readPeerLines(logFile).length;
      const want = k % 2 === 0 ? 'removed' : 'added';
      const t = Date.now();
      if (want === 'removed') s.stream!.close();
      else await open(s);
      let hit: PeerLine | undefined;
      await until(
        () => {
          hit = readPeerLines(logFile)
            .slice(before)
            .find((l) => l[want] > 0);
          return hit !== undefined;
        },
        `change ${k} (${want}) at the daemon`,
        5,
      );
      lat.push(hit!.atMs - t);
      apply.push(hit!.applyMs);
      await sleep(200);
    }
    console.log(
      `changes: ${changes} (streams closed and opened) from the call to the daemon's peer table: p50 ${pct(lat, 50)} ms, p99 ${pct(lat, 99)} ms;` +
        ` the daemon's own apply: p50 ${pct(apply, 50).toFixed(1)} ms, p99 ${pct(apply, 99).toFixed(1)} ms; daemon CPU ${(cpuSeconds(pid) - cpu0).toFixed(2)} s;` +
        ` RSS ${rss0.toFixed(0)} -> ${rssMb(pid).toFixed(0)} MiB; load average ${load()}`,
    );
    if (profDir) console.log(`profile window of the changes: --window ${window0} ${monoUs()}`);
    // a quiet spell: what the idle release (full collections, malloc_trim) leaves of the status runs' and changes' garbage
    await sleep(QUIET_MS);
    const rssQuiet = rssMb(pid);
    const st = await cli(['status', '--json'], 60_000);
    const releases = (JSON.parse(st.stdout) as { counters?: { memory?: { idleReleases?: number } } }).counters?.memory?.idleReleases;
    console.log(`after ${QUIET_MS / 1000} s quiet: RSS ${rssQuiet.toFixed(0)} MiB; idle releases so far ${releases ?? '?'}; load average ${load()}`);
    await cli(['down'], 30_000);
    if (profDir) {
      // the profile is written when the daemon exits (SIGTERM: an orderly stop, then process.exit)
      process.kill(pid, 'SIGTERM');
      await until(() => !existsSync(`/proc/${pid}`), 'the profiled daemon exiting', 50);
      console.log(`daemon profile in ${profDir}`);
    }
  } finally {
    child?.send({ type: 'stop' });
    if (child) await Promise.race([new Promise((r) => child!.once('exit', r)), sleep(10_000)]);
    child?.kill();
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

await main();
