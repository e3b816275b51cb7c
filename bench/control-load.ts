// Load generator for the control plane: N simulated nodes, each with a real
// map stream over HTTPS through the node's own control client (sealed map
// request, strict map parser), against a control server in its own process
// on loopback with a SQLite file. The nodes are seeded into the store before
// the server starts (registration one at a time is not what is measured here),
// under a realistic access policy:
//   - N/8 users with 7 nodes each on average (autogroup:self: a user's nodes see each other);
//   - group:admins (2 users) reach everything; group:eng (a quarter of the users)
//     reaches tag:server on 443 and 22; 5% of the nodes are tag:server, 2% tag:nas.
// It measures, from `policy set` through the admin socket (as the CLI does)
// until every affected stream holds its new map: the time, the map bytes
// pushed in all and per node, control's CPU and RSS; and the same for one
// node's endpoint change.
//   node dist/bench/control-load.js --nodes 1000
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocateAddresses, ipv6Prefix } from '../src/control/addresses.js';
import { admin } from '../src/control/admin-client.js';
import { createAuthKey } from '../src/control/authkeys.js';
import { setPolicy } from '../src/control/policy.js';
import { Registry } from '../src/control/registry.js';
import { SqliteStore } from '../src/control/sqlite-store.js';
import { stateFiles } from '../src/control/state-dir.js';
import { keyToText } from '../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../src/crypto/x25519.js';
import { ControlClient } from '../src/daemon/control-client.js';
import type { MapLine, NetworkMap } from '../src/netmap/types.js';
import { cpuSeconds, peakRssMb, rssMb } from './procstat.js';

/** More nodes than this needs more file descriptors than one generator process gets here (two per node). */
const MAX_NODES = 8000;
/** Streams opened at once while connecting. */
const CONNECT_CONCURRENCY = 64;
/** No map line on any stream for this long: the network has settled. */
const QUIET_MS = 2000;
/** The most a step may take before the bench gives up. */
const STEP_DEADLINE_MS = 15 * 60_000;
/** Silence after which a map stream gives up (the server sends a keepalive every 3 s; the generator is busy). */
const STREAM_IDLE_MS = 300_000;
const NAS_PORT = 445;

interface Sim {
  i: number;
  priv: Buffer;
  key: string;
  disco: string;
  endpoints: string[];
  user: string | null;
  tags: string[];
  client?: ControlClient;
  maps: number;
  bytes: number;
  /** the stream ended: why */
  ended: string | null;
  /** from the latest map: a filter rule opens NAS_PORT, a tag:nas node is a peer, the watched peer's endpoints */
  nasRule: boolean;
  nasPeer: boolean;
  watched: string[] | null;
  /** its own endpoints in the latest map */
  own: string[];
}

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  const v = i < 0 ? dflt : Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 8 || v > MAX_NODES) throw new Error(`${name}: an integer 8-${MAX_NODES}`);
  return v;
};

const nodes = arg('--nodes', 1000);
const users = Math.max(4, Math.floor(nodes / 8));
const userName = (u: number): string => `user${u}`;
const eng = Array.from({ length: users }, (_, u) => u).filter((u) => u >= 2 && u % 4 === 2);

function policyText(withNas: boolean): string {
  return JSON.stringify({
    groups: { 'group:admins': [userName(0), userName(1)], 'group:eng': eng.map(userName) },
    tagOwners: { 'tag:server': ['group:admins'], 'tag:nas': ['group:admins'] },
    acls: [
      { action: 'accept', src: ['group:eng'], dst: ['tag:server:443,22'] },
      { action: 'accept', src: ['group:admins'], dst: ['*:*'] },
      { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] },
      ...(withNas ? [{ action: 'accept', src: ['group:eng'], dst: [`tag:nas:${NAS_PORT}`] }] : []),
    ],
    tests: [{ src: userName(eng[0]!), accept: ['tag:server:22'], deny: [`tag:nas:${withNas ? 22 : NAS_PORT}`] }],
  });
}

/** Node i: 5% tag:server, 2% tag:nas, the rest spread over the users. */
function identity(i: number): { user: string | null; tags: string[] } {
  if (i % 20 === 19) return { user: null, tags: ['tag:server'] };
  if (i % 50 === 23) return { user: null, tags: ['tag:nas'] };
  return { user: userName(i % users), tags: [] };
}

async function seed(dir: string): Promise<Sim[]> {
  const store = new SqliteStore(stateFiles(dir).db);
  const sims: Sim[] = [];
  try {
    const authKeyId = (await createAuthKey(store, { reusable: true, ephemeral: false, expiryMs: null })).record.id;
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
          ...identity(i),
          maps: 0,
          bytes: 0,
          ended: null,
          nasRule: false,
          nasPeer: false,
          watched: null,
          own: [],
        };
        sims.push(sim);
        await tx.insertNode({
          nodeKey: sim.key,
          discoKey: sim.disco,
          hostname: `n${i}`,
          requestedHostname: `n${i}`,
          os: 'linux',
          version: 'bench',
          ...(await allocateAddresses(tx)),
          endpoints: sim.endpoints,
          homeRelay: null,
          ephemeral: false,
          authKeyId,
          createdAtMs: Date.now(),
          lastSeenMs: null,
          keyExpiresAtMs: null,
          connected: false,
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, pollMs = 5): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > STEP_DEADLINE_MS) throw new Error(`${what}: not within ${STEP_DEADLINE_MS / 1000} s`);
    await sleep(pollMs);
  }
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const kb = (b: number): string => (b / 1024).toFixed(1);
const mb = (b: number): string => (b / 1024 / 1024).toFixed(1);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-control-load-'));
  const t0 = Date.now();
  const sims = await seed(dir);
  console.log(`control-load: ${nodes} nodes, ${users} users (${eng.length} in group:eng), seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const child = fork(join(dirname(fileURLToPath(import.meta.url)), 'control-serve.js'), [dir, String(nodes)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages: { type: string; [k: string]: unknown }[] = [];
  child.on('message', (m) => messages.push(m as { type: string }));
  const next = async (type: string): Promise<Record<string, unknown>> => {
    await until(() => messages.some((m) => m.type === type), `control's ${type}`);
    return messages.splice(
      messages.findIndex((m) => m.type === type),
      1,
    )[0]!;
  };
  const pid = child.pid!;
  try {
    const ready = await next('ready');
    const url = `https://127.0.0.1:${ready.port as number}`;
    // the peer every endpoint-change step watches: the first node of an eng user
    const target = sims.find((s) => s.user === userName(eng[0]!))!;
    let lastLine = Date.now();
    const onMap = (s: Sim, l: MapLine): void => {
      if (l.type !== 'map') return;
      lastLine = Date.now();
      s.maps++;
      s.bytes += Buffer.byteLength(JSON.stringify(l)) + 1;
      const m: NetworkMap = l.map;
      s.nasRule = (m.packetFilter ?? []).some((r) => r.dstPorts.some((d) => d.first === NAS_PORT));
      s.nasPeer = m.peers.some((p) => p.tags?.includes('tag:nas') === true);
      s.watched = m.peers.find((p) => p.nodeKey === target.key)?.endpoints ?? null;
      s.own = m.self.endpoints;
    };
    const connectStart = Date.now();
    const cpu0 = cpuSeconds(pid);
    let nextIndex = 0;
    await Promise.all(
      Array.from({ length: CONNECT_CONCURRENCY }, async () => {
        while (nextIndex < sims.length) {
          const s = sims[nextIndex++]!;
          s.client = new ControlClient(url, ready.certPem as string, s.priv);
          const stream = await s.client.openMap({ endpoints: s.endpoints, discoKey: s.disco }, (l) => onMap(s, l), STREAM_IDLE_MS);
          void stream.done.then((d) => (s.ended = d.error?.message ?? d.gone ?? 'closed'));
        }
      }),
    );
    const progress = setInterval(() => {
      const ended = sims.filter((s) => s.ended !== null);
      const why = ended.length ? `; ${ended.length} ended, e.g. ${ended[0]!.ended}` : '';
      console.log(`  ${((Date.now() - connectStart) / 1000).toFixed(0)} s: ${sims.filter((s) => s.maps > 0).length} streams with a map${why}`);
    }, 30_000);
    await until(() => sims.every((s) => s.maps > 0), 'first maps');
    clearInterval(progress);
    const connected = (Date.now() - connectStart) / 1000;
    await until(() => Date.now() - lastLine > QUIET_MS, 'quiet after connecting', 50);
    const allOnline = (Date.now() - connectStart - QUIET_MS) / 1000;
    console.log(
      `connect: ${nodes} streams open with a first map in ${connected.toFixed(1)} s; settled in ${allOnline.toFixed(1)} s;` +
        ` ${mb(sum(sims.map((s) => s.bytes)))} MiB of maps; control CPU ${(cpuSeconds(pid) - cpu0).toFixed(1)} s, RSS ${rssMb(pid).toFixed(0)} MiB`,
    );

    const step = async (name: string, act: () => Promise<unknown>, affected: Sim[], done: (s: Sim) => boolean): Promise<void> => {
      const maps0 = sims.map((s) => s.maps);
      const bytes0 = sims.map((s) => s.bytes);
      const stats0 = (child.send({ type: 'stats' }), await next('stats'));
      const c0 = cpuSeconds(pid);
      const start = process.hrtime.bigint();
      await act();
      await until(() => affected.every(done), `${name}: every affected stream`, 1);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      await until(() => Date.now() - lastLine > QUIET_MS, `${name}: quiet`, 50);
      const cpu = cpuSeconds(pid) - c0 - 0;
      const stats1 = (child.send({ type: 'stats' }), await next('stats'));
      const got = sims.filter((s, i) => s.maps > maps0[i]!);
      const bytes = sum(sims.map((s, i) => s.bytes - bytes0[i]!));
      const server = stats1.mapBytes === null ? 'n/a' : `${mb((stats1.mapBytes as number) - (stats0.mapBytes as number))} MiB`;
      console.log(
        `${name}: all ${affected.length} affected nodes had the new map in ${ms.toFixed(0)} ms; ${got.length} of ${nodes} streams got a map` +
          ` (${got.length - affected.length} beyond the affected); ${mb(bytes)} MiB pushed (server count ${server}),` +
          ` ${kb(bytes / Math.max(1, got.length))} KiB per node that got one; control CPU ${cpu.toFixed(2)} s (incl. ${QUIET_MS / 1000} s quiet), RSS ${rssMb(pid).toFixed(0)} MiB`,
      );
    };

    // group:eng may now reach tag:nas on 445: the NAS nodes' filters and the eng nodes' peers change
    const engUsers = new Set(eng.map(userName));
    const nas = sims.filter((s) => s.tags.includes('tag:nas'));
    const engNodes = sims.filter((s) => s.user !== null && engUsers.has(s.user));
    await step(
      'policy set',
      () => admin.setPolicy(dir, policyText(true)),
      [...nas, ...engNodes],
      (s) => (s.tags.includes('tag:nas') ? s.nasRule : s.nasPeer),
    );

    // the moved node itself, and every node whose map shows it
    const seeing = sims.filter((s) => s.watched !== null || s === target);
    const moved = '203.0.113.7:41641';
    await step(
      'endpoint change',
      () => target.client!.call('endpoints', { endpoints: [moved], homeRelay: null }, 60_000),
      seeing,
      (s) => (s === target ? s.own.includes(moved) : s.watched?.includes(moved) === true),
    );
    console.log(`control: peak RSS ${peakRssMb(pid).toFixed(0)} MiB; generator CPU ${process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6} s`);
  } finally {
    child.send({ type: 'stop' });
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10_000)]);
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

await main();
