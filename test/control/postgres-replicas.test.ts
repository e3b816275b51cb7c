// Two control servers on one PostgreSQL database: a node registered through
// one appears, within a second, in the map a node streams from the other
// (LISTEN/NOTIFY wakes the other server, which reads the network again).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { postgresSkipReason, startPostgres, type PgCluster } from '../helpers/postgres.js';
import { harness, Node, openStream, registerBody, until, type Harness, type OpenStream } from './helpers.js';

const P = '/meshctl/v1';
const skip = postgresSkipReason();
let cluster: PgCluster | null = null;
before(async () => {
  if (!skip) cluster = await startPostgres();
});
after(async () => cluster?.stop());

test('a join through one control server reaches a map stream on the other within 1 s', { skip: skip || undefined }, async () => {
  const url = await cluster!.createDatabase('replicas');
  let a: Harness | undefined;
  let b: Harness | undefined;
  let s: OpenStream | undefined;
  try {
    a = await harness({ db: { url } });
    b = await harness({ db: { url } });
    const key = await a.authKey();
    // the auth key made through a is in the shared database: b accepts it
    const watcher = new Node(b.server.publicKey!);
    const first = await b.post(`${P}/register`, watcher.seal('register', registerBody(key, 'watcher')));
    assert.equal(first.status, 200);
    s = await openStream(b, watcher);
    const hasPeer = (name: string) => s!.lines().some((l) => l.includes(`"name":"${name}"`));
    await until(() => s!.lines().length > 0, 5000, 'the first map');
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
  } finally {
    s?.res.destroy();
    await a?.close();
    await b?.close();
  }
});
