// A node's control client with two login servers, replicas on one PostgreSQL
// database: registered and streaming through the first, it moves to the second
// when the first is killed (SIGKILL: no goodbye, the stream is cut), keeps its
// node key, and gets the changes made through the second.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { ControlClient } from '../../src/daemon/control-client.js';
import { generatePrivateKey } from '../../src/crypto/x25519.js';
import type { MapLine, NetworkMap } from '../../src/netmap/types.js';
import { postgresSkipReason, startPostgres, type PgCluster } from '../helpers/postgres.js';
import { spawnReplica, type ReplicaProcess } from '../helpers/control-replica.js';
import { discoKey, harness, Node, registerBody, tempDir, until, type Harness } from '../control/helpers.js';

const skip = postgresSkipReason();
let cluster: PgCluster | null = null;
before(async () => {
  if (!skip) cluster = await startPostgres();
});
after(async () => cluster?.stop());

test('a control client with two login servers fails over when its replica is killed', { skip: skip || undefined, timeout: 60_000 }, async () => {
  const url = await cluster!.createDatabase('failover');
  const dirA = tempDir();
  let a: ReplicaProcess | undefined;
  let b: Harness | undefined;
  const c = { close: () => {} };
  try {
    b = await harness({ db: { url }, replica: { leaseTtlMs: 1500, renewMs: 250 } });
    a = await spawnReplica(url, dirA, 1500, 250);
    const key = await b.authKey();
    const client = new ControlClient([a.url, b.url], b.server.certPem, generatePrivateKey());
    await client.call('register', registerBody(key, 'mover'), 5000);
    assert.equal(client.url, a.url, 'the first login server answered');
    let map: NetworkMap | null = null;
    const onLine = (l: MapLine) => {
      if (l.type === 'map') map = l.map;
    };
    const body = { endpoints: [], discoKey: discoKey() };
    let stream = await client.openMap(body, onLine, 30_000);
    c.close = () => stream.close();
    await until(() => map !== null, 5000, 'the first map, from A');
    const self = map!.self.name;

    await a.kill();
    const t0 = performance.now();
    const end = await stream.done;
    assert.equal(end.gone, undefined);
    // as the daemon's map loop does: open the stream again (it goes to the next replica first)
    map = null;
    stream = await client.openMap(body, onLine, 30_000);
    await until(() => map !== null, 5000, 'a map from B');
    const ms = Math.round(performance.now() - t0);
    process.stderr.write(`failover: replica A killed -> first map from B in ${ms} ms\n`);
    assert.equal(client.url, b.url);
    assert.equal(map!.self.name, self, 'the same node (same node key) after failover');
    // changes made through B reach the node on its new stream
    const joiner = new Node(b.server.publicKey!);
    assert.equal((await b.post('/meshctl/v1/register', joiner.seal('register', registerBody(key, 'latecomer')))).status, 200);
    await until(() => map!.peers.some((p) => p.name.startsWith('latecomer')), 5000, 'a change through B on the new stream');
    // requests fail over too: the endpoint update goes to B, where the node streams now
    await client.call('endpoints', { endpoints: ['198.51.100.9:41641'] }, 5000);
  } finally {
    c.close();
    await a?.kill();
    await b?.close();
    rmSync(dirA, { recursive: true, force: true });
  }
});
