// Control replicas on one PostgreSQL database: what is changed through one
// (join, endpoint update, policy, delete) reaches, within a second, a map stream
// on another (a NOTIFY wakes it, it reads the change log from where it was);
// they share the control key, the certificate and the replay cache; presence
// is a lease any replica sees, and a killed replica's leases expire.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { admin } from '../../src/control/admin-client.js';
import { postgresSkipReason, startPostgres, type PgCluster } from '../helpers/postgres.js';
import { spawnReplica, type ReplicaProcess } from '../helpers/control-replica.js';
import { discoKey, harness, latestMap, Node, openStream, registerBody, tempDir, until, type Harness, type OpenStream } from './helpers.js';

const P = '/meshctl/v1';
const skip = postgresSkipReason();
let cluster: PgCluster | null = null;
before(async () => {
  if (!skip) cluster = await startPostgres();
});
after(async () => cluster?.stop());

/** Two control servers, A and B, on a new database `name`; closed after `f`, with the streams it put in `streams`. */
async function withReplicas(name: string, f: (a: Harness, b: Harness, streams: OpenStream[]) => Promise<void>): Promise<void> {
  const url = await cluster!.createDatabase(name);
  let a: Harness | undefined;
  let b: Harness | undefined;
  const streams: OpenStream[] = [];
  try {
    a = await harness({ db: { url } });
    b = await harness({ db: { url } });
    await f(a, b, streams);
  } finally {
    for (const s of streams) s.res.destroy();
    await a?.close();
    await b?.close();
  }
}

test('a join through one control server reaches a map stream on the other within 1 s', { skip: skip || undefined }, async () => {
  await withReplicas('replicas', async (a, b, streams) => {
    const key = await a.authKey();
    // the auth key made through a is in the shared database: b accepts it
    const watcher = new Node(b.server.publicKey!);
    const first = await b.post(`${P}/register`, watcher.seal('register', registerBody(key, 'watcher')));
    assert.equal(first.status, 200);
    const s = await openStream(b, watcher);
    streams.push(s);
    const hasPeer = (name: string) => s.lines().some((l) => l.includes(`"name":"${name}"`));
    await until(() => s.lines().length > 0, 5000, 'the first map');
    const joiner = new Node(a.server.publicKey!);
    const reply = await a.post(`${P}/register`, joiner.seal('register', registerBody(key, 'joiner')));
    assert.equal(reply.status, 200);
    const t0 = Date.now();
    await until(() => hasPeer('joiner'), 5000, 'the joiner in the map from the other server');
    const ms = Date.now() - t0;
    process.stderr.write(`replicas: a join through one server reached a stream on the other in ${ms} ms\n`);
    assert.ok(ms < 1000, `took ${ms} ms`);
    // addresses come from one counter in the database: the two nodes never share one
    const addresses = (r: { body: Record<string, unknown> }) => (r.body.node as { addresses: string[] }).addresses;
    assert.notDeepEqual(addresses(reply), addresses(first));
  });
});

/** Polls until `cond` holds (deadline `ms`), then prints and returns how long it took. */
async function timed(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<number> {
  const t0 = performance.now();
  await until(cond, ms, what);
  const took = Math.round(performance.now() - t0);
  process.stderr.write(`replicas: ${what}: ${took} ms\n`);
  return took;
}

test('join, endpoint update, policy and delete through replica A reach a stream on replica B within 1 s', { skip: skip || undefined }, async () => {
  await withReplicas('replica_changes', async (a, b, streams) => {
    // one identity: the second replica took the first one's control key and certificate from the database
    assert.deepEqual(b.server.publicKey, a.server.publicKey);
    assert.equal(b.server.certPem, a.server.certPem);
    const key = await b.authKey();
    const watcher = new Node(b.server.publicKey!);
    assert.equal((await b.post(`${P}/register`, watcher.seal('register', registerBody(key, 'watcher')))).status, 200);
    const s = await openStream(b, watcher);
    streams.push(s);
    await until(() => s.lines().length > 0, 5000, 'the first map');
    const peer = (name: string) => latestMap(s)?.peers.find((p) => p.name.split('.')[0] === name);

    const joiner = new Node(a.server.publicKey!);
    assert.equal((await a.post(`${P}/register`, joiner.seal('register', registerBody(key, 'joiner')))).status, 200);
    const times = [await timed('join through A seen on B', () => peer('joiner') !== undefined)];

    const ep = '198.51.100.7:41641';
    const update = await a.post(`${P}/endpoints`, joiner.seal('endpoints', { endpoints: [ep], discoKey: discoKey() }));
    assert.equal(update.status, 200);
    times.push(await timed('endpoint update through A seen on B', () => peer('joiner')?.endpoints.includes(ep) === true));

    const before = JSON.stringify(latestMap(s)?.packetFilter);
    await admin.setPolicy(a.dir, '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:22"]}]}');
    times.push(await timed('policy change through A seen on B', () => JSON.stringify(latestMap(s)?.packetFilter) !== before));

    // admin commands work through any replica: a delete through A's admin socket
    await admin.deleteNode(a.dir, 'joiner');
    times.push(await timed('delete through A seen on B', () => peer('joiner') === undefined));
    for (const t of times) assert.ok(t < 1000, `took ${t} ms`);

    // and the stream of a node deleted through A, held by B, ends with the reason
    await admin.deleteNode(a.dir, 'watcher');
    await timed("the deleted node's stream on B ended", () => s.lines().some((l) => l.includes('"type":"gone"') && l.includes('NODE_UNKNOWN')));
  });
});

test('a sealed request accepted by replica A is refused as a replay by replica B', { skip: skip || undefined }, async () => {
  await withReplicas('replica_replay', async (a, b) => {
    const n = new Node(a.server.publicKey!);
    assert.equal((await a.post(`${P}/register`, n.seal('register', registerBody(await a.authKey(), 'n')))).status, 200);
    const sealed = n.seal('endpoints', { endpoints: ['198.51.100.8:41641'], discoKey: discoKey() });
    assert.equal((await a.post(`${P}/endpoints`, sealed)).status, 200);
    const replay = await b.post(`${P}/endpoints`, sealed);
    assert.equal(replay.status, 401);
    assert.deepEqual((replay.body.error as { code: string }).code, 'STALE_REQUEST');
    assert.match((replay.body.error as { message: string }).message, /replayed/);
    // a fresh request from the same node is fine on B: the refusal was the replay, not the key
    assert.equal((await b.post(`${P}/endpoints`, n.seal('endpoints', { endpoints: [], discoKey: discoKey() }))).status, 200);
  });
});

test("a node streaming from replica A shows online on B; killed, A's lease expires and B shows it offline", { skip: skip || undefined }, async () => {
  const url = await cluster!.createDatabase('replica_presence');
  const TTL_MS = 1500;
  const RENEW_MS = 250;
  let b: Harness | undefined;
  let a: ReplicaProcess | undefined;
  let s: OpenStream | undefined;
  const dirA = tempDir();
  try {
    b = await harness({ db: { url }, replica: { leaseTtlMs: TTL_MS, renewMs: RENEW_MS } });
    a = await spawnReplica(url, dirA, TTL_MS, RENEW_MS);
    const n = new Node(b.server.publicKey!);
    assert.equal((await b.post(`${P}/register`, n.seal('register', registerBody(await b.authKey(), 'roamer')))).status, 200);
    const onA = { ...b, url: a.url } as Harness;
    s = await openStream(onA, n);
    const online = async () => (await admin.listNodes(b!.dir)).find((x) => x.name.split('.')[0] === 'roamer')?.online;
    await timed('a stream on A shows online on B', async () => (await online()) === true);
    // a few renewals later it is still online (the lease is renewed, not just taken)
    await new Promise((r) => setTimeout(r, 3 * RENEW_MS + TTL_MS));
    assert.equal(await online(), true);
    await a.kill();
    const took = await timed("killed replica A's lease expired on B", async () => (await online()) === false, 10_000);
    assert.ok(took < TTL_MS + 4 * RENEW_MS + 1000, `took ${took} ms`);
  } finally {
    s?.res.destroy();
    await a?.kill();
    await b?.close();
    rmSync(dirA, { recursive: true, force: true });
  }
});
