// The change log replicas follow on a shared PostgreSQL database: numbers in
// commit order with no gap, also when one writer's transaction stays open
// while another tries to commit, and under two pools writing at once; a
// position the pruned log no longer reaches reads as `behind`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PgStore, type LoggedChange } from '../../src/control/pg-store.js';
import { postgresSkipReason, startPostgres, type PgCluster } from '../helpers/postgres.js';

const skip = postgresSkipReason();
let cluster: PgCluster | null = null;
before(async () => {
  if (!skip) cluster = await startPostgres();
});
after(async () => cluster?.stop());

/** Reads every change after `from` in batches of `batch`, checking each batch starts right after the last one read. */
async function readAll(store: PgStore, from: number, batch: number): Promise<LoggedChange[]> {
  const out: LoggedChange[] = [];
  let pos = from;
  for (;;) {
    const r = await store.changesSince(pos, batch);
    assert.equal(r.behind, false, `behind at ${pos}`);
    if (r.behind || r.changes.length === 0) return out;
    for (const c of r.changes) assert.equal(c.seq, ++pos, 'a gap in the change log');
    out.push(...r.changes);
  }
}

test('a change committed late is not skipped: a writer waits for the open transaction, so numbers follow commit order', {
  skip: skip || undefined,
}, async () => {
  const url = await cluster!.createDatabase('late_commit');
  const a = await PgStore.open(url);
  const b = await PgStore.open(url);
  const reader = await PgStore.open(url);
  try {
    const start = await reader.changeHead();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let aWrote!: () => void;
    const aInside = new Promise<void>((r) => (aWrote = r));
    // a's transaction writes, then stays open
    const slow = a.transaction(async (tx) => {
      await tx.setMeta('late', 'a');
      aWrote();
      await gate;
    });
    await aInside;
    // b commits "meanwhile": it must not get a number a reader could pass before a's commits
    let bDone = false;
    const fast = b.setMeta('early', 'b').then(() => (bDone = true));
    // the reader polls while a is open: it sees nothing new (b waits on the writers' lock behind a)
    for (let i = 0; i < 10; i++) {
      const r = await reader.changesSince(start, 100);
      assert.equal(r.behind, false);
      assert.deepEqual(r.behind ? [] : r.changes, [], 'a change became visible while an earlier writer was still open');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(bDone, false, 'the second writer committed while the first was open');
    release();
    await Promise.all([slow, fast]);
    const seen = await readAll(reader, start, 100);
    assert.deepEqual(
      seen.map((c) => [c.seq - start, c.origin, c.kind]),
      [
        [1, a.instance, 'meta'],
        [2, b.instance, 'meta'],
      ],
    );
  } finally {
    await Promise.all([a.close(), b.close(), reader.close()]);
  }
});

test('two pools writing at once, a reader following: every change once, in order, no gap', { skip: skip || undefined }, async () => {
  const url = await cluster!.createDatabase('concurrent_writers');
  const a = await PgStore.open(url);
  const b = await PgStore.open(url);
  const reader = await PgStore.open(url);
  const PER_WRITER = 150;
  try {
    const start = await reader.changeHead();
    const seen: LoggedChange[] = [];
    let pos = start;
    let writing = true;
    // the reader follows while the writers run, in small batches
    const follow = (async () => {
      while (writing || pos < (await reader.changeHead())) {
        const r = await reader.changesSince(pos, 7);
        assert.equal(r.behind, false);
        if (r.behind) return;
        for (const c of r.changes) assert.equal(c.seq, ++pos, 'a gap in the change log');
        seen.push(...r.changes);
        if (r.changes.length === 0) await new Promise((res) => setTimeout(res, 2));
      }
    })();
    const writer = (s: PgStore, tag: string) =>
      Promise.all(
        Array.from({ length: PER_WRITER }, (_, i) => (i % 3 === 0 ? s.transaction(async (tx) => tx.setMeta(`${tag}${i}`, 'x')) : s.setMeta(`${tag}${i}`, 'x'))),
      );
    await Promise.all([writer(a, 'a'), writer(b, 'b')]);
    writing = false;
    await follow;
    assert.equal(seen.length, 2 * PER_WRITER);
    assert.equal(seen.filter((c) => c.origin === a.instance).length, PER_WRITER);
    assert.equal(seen.filter((c) => c.origin === b.instance).length, PER_WRITER);
    // a rolled-back transaction takes no number
    await assert.rejects(
      a.transaction(async (tx) => {
        await tx.setMeta('rolled', 'back');
        throw new Error('abort');
      }),
    );
    await b.setMeta('after', 'rollback');
    const tail = await readAll(reader, pos, 10);
    assert.deepEqual(
      tail.map((c) => c.origin),
      [b.instance],
    );
  } finally {
    await Promise.all([a.close(), b.close(), reader.close()]);
  }
});

test('the log is pruned to its bound; a position before what it keeps reads as behind', { skip: skip || undefined }, async () => {
  const url = await cluster!.createDatabase('pruned');
  const s = await PgStore.open(url, { changeLogKeepRows: 5 });
  try {
    const start = await s.changeHead();
    for (let i = 0; i < 20; i++) await s.setMeta(`k${i}`, 'v');
    const rows = Number(await cluster!.psql('pruned', 'SELECT count(*) FROM change_log'));
    assert.ok(rows <= 10, `${rows} rows kept`);
    const r = await s.changesSince(start, 100);
    assert.equal(r.behind, true);
    assert.equal(r.head, start + 20);
    const recent = await s.changesSince(start + 18, 100);
    assert.equal(recent.behind, false);
    assert.equal(recent.behind ? 0 : recent.changes.length, 2);
  } finally {
    await s.close();
  }
});
