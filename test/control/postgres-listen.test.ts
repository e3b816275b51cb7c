// A replica's LISTEN connection dies (here: pg_terminate_backend, as a
// database restart or a proxy's idle cut would): the replica reconnects it
// after a short bounded wait and reads the change log from where it was, so
// a change committed through another replica while nobody listened still
// reaches a stream on this one within a second of the reconnect, not at the
// next periodic tick. Killed again and again, the wait starts short each time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { postgresSkipReason, startPostgres, type PgCluster } from '../helpers/postgres.js';
import { harness, latestMap, Node, openStream, registerBody, until, type Harness, type OpenStream } from './helpers.js';

const P = '/meshctl/v1';
const skip = postgresSkipReason();
let cluster: PgCluster | null = null;
before(async () => {
  if (!skip) cluster = await startPostgres();
});
after(async () => cluster?.stop());

/** The periodic tick (which also reads the log) is pushed far out, so only the listener's reconnect can bring a change in time. */
const NO_TICK = { renewMs: 600_000, leaseTtlMs: 1_800_000 };
/** Kills in a row: with a wait that doubled on every loss and never shrank, the later ones would take seconds. */
const ROUNDS = 6;
/** From the write through A to the map on B: the first reconnect wait (250 ms), the reconnect, one catch-up read. */
const DELIVERY_BOUND_MS = 1500;

test("a replica's LISTEN connection killed: changes through the other replica still reach its streams within a second", {
  skip: skip || undefined,
}, async () => {
  const db = 'listen_reconnect';
  const url = await cluster!.createDatabase(db);
  const logB: string[] = [];
  let a: Harness | undefined;
  let b: Harness | undefined;
  let s: OpenStream | undefined;
  // the test's own connection to look at and end the replicas' backends
  const probe = new pg.Client({ connectionString: cluster!.url(db), application_name: 'listen-test' });
  try {
    await probe.connect();
    a = await harness({ db: { url }, replica: NO_TICK });
    b = await harness({ db: { url }, replica: NO_TICK, logger: (m) => logB.push(m) });
    const key = await a.authKey();
    const watcher = new Node(b.server.publicKey!);
    assert.equal((await b.post(`${P}/register`, watcher.seal('register', registerBody(key, 'watcher')))).status, 200);
    s = await openStream(b, watcher);
    const stream = s;
    await until(() => stream.lines().length > 0, 5000, 'the first map');
    const listeners = async (): Promise<string[]> =>
      (
        await probe.query(
          "SELECT pid FROM pg_stat_activity WHERE (application_name = 'meshctl-control listen' OR query = 'LISTEN meshctl_changes') AND state = 'idle'",
        )
      ).rows.map((r: { pid: number }) => String(r.pid));
    await until(async () => (await listeners()).length === 2, 5000, 'both replicas listening');
    const times: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // every listener on the database goes (A's and B's): B must notice, reconnect and catch up
      const killed = await listeners();
      assert.equal(killed.length, 2, `round ${round}: listeners ${killed.join(',')}`);
      await probe.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [killed.map(Number)]);
      // written while B has no listener: its NOTIFY is lost to B, the change log has it
      const name = `joiner${round}`;
      const joiner: Node = new Node(a.server.publicKey!);
      const t0 = performance.now();
      assert.equal((await a.post(`${P}/register`, joiner.seal('register', registerBody(key, name)))).status, 200);
      await until(() => latestMap(stream)?.peers.some((p) => p.name.split('.')[0] === name) === true, 10_000, `${name} in B's map`);
      const ms = Math.round(performance.now() - t0);
      times.push(ms);
      // the next round kills the new listeners: wait until both are back
      await until(
        async () => {
          const now = await listeners();
          return now.length === 2 && now.every((p) => !killed.includes(p));
        },
        10_000,
        'both listeners reconnected',
      );
    }
    process.stderr.write(`listen: join through A seen on B after B's listener was killed, per round: ${times.join(', ')} ms\n`);
    for (const [i, ms] of times.entries()) assert.ok(ms < DELIVERY_BOUND_MS, `round ${i}: took ${ms} ms (${times.join(', ')})`);
    const lost = logB.filter((l) => l.includes('changes: connection lost'));
    assert.ok(lost.length >= ROUNDS, `B logs each lost listener: ${JSON.stringify(logB)}`);
  } finally {
    s?.res.destroy();
    await probe.end().catch(() => {});
    await a?.close();
    await b?.close();
  }
});
