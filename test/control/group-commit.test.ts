// Group commit in the SQLite store: writes that arrive within one turn of the
// event loop share one COMMIT (and its fsyncs), each caller is answered only
// once that COMMIT returned, a failing write is rolled back alone, and a
// failing COMMIT refuses every write of its group while what earlier groups
// committed stays. The fsyncs are SQLite's own (node-sqlite3-wasm calls
// fs.fsyncSync): the test counts them, and makes one fail, at that call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { storeNode } from '../helpers/store-node.js';

const node = storeNode;

const limits = { total: 1000, perNodeKey: 100 };

/** Counts SQLite's fsyncs while `f` runs; `failNext` makes the next one fail as a full or broken disk would. */
async function withFsyncs<T>(f: (c: { count: number; failNext: boolean }) => Promise<T>): Promise<T> {
  const real = fs.fsyncSync;
  const c = { count: 0, failNext: false };
  fs.fsyncSync = (fd: number) => {
    c.count++;
    if (c.failNext) {
      c.failNext = false;
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    }
    real(fd);
  };
  try {
    return await f(c);
  } finally {
    fs.fsyncSync = real;
  }
}

function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-group-commit-'));
  return f(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('writes of one turn share one commit; each caller is answered only when its write is in the file', () =>
  withDir(async (dir) => {
    const path = join(dir, 'control.db');
    const s = new SqliteStore(path);
    try {
      const ids = (await Promise.all([1, 2, 3, 4].map((i) => s.insertNode(node(i))))).map((n) => n.id);
      const before = s.commitStats;
      const N = 40;
      const { fsyncs, seen } = await withFsyncs(async (c) => {
        // what the database file holds at the moment each caller is answered (a copy opened apart)
        const seen: boolean[] = [];
        const inFile = async (i: number): Promise<boolean> => {
          const copy = join(dir, `copy-${i}.db`);
          // the file and its write-ahead log, as a crash would leave them
          copyFileSync(path, copy);
          if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${copy}-wal`);
          const other = new SqliteStore(copy);
          try {
            return (await other.hasNonce(`nk${1 + (i % 4)}`, `n${i}`, 0)) && (await other.getNode(ids[i % 4]!))?.lastSeenMs === 5000 + i;
          } finally {
            await other.close();
          }
        };
        const start = c.count;
        // a map stream's open: the nonce and the node's presence in one transaction, N of them at once (as N streams in one turn)
        const writes = Array.from({ length: N }, (_, i) =>
          s
            .transaction(async (tx) => {
              assert.equal(await tx.rememberNonce(`nk${1 + (i % 4)}`, `n${i}`, 10_000, 0, limits), 'fresh');
              await tx.updateNode(ids[i % 4]!, { lastSeenMs: 5000 + i, connected: true });
            })
            .then(() => {
              // answered: the commit has returned, so its writes are in the file (checked on a copy below)
              seen[i] = true;
            }),
        );
        // only the last write of each node stays; copies are checked for the last four
        await Promise.all(writes);
        const fsyncs = c.count - start;
        const last = await Promise.all([N - 4, N - 3, N - 2, N - 1].map(inFile));
        return { fsyncs, seen: last.every(Boolean) && seen.filter(Boolean).length === N };
      });
      const after = s.commitStats;
      assert.ok(seen, 'every caller was answered and its write was in the database file');
      assert.ok(fsyncs <= 6, `${N} concurrent transactions cost ${fsyncs} fsyncs (a commit: 1 in WAL mode, 4 with the rollback journal)`);
      assert.ok(after.commits - before.commits <= 2, `${N} concurrent transactions took ${after.commits - before.commits} commits`);
      assert.equal(after.writes - before.writes, N, 'each transaction counted once');
    } finally {
      await s.close();
    }
  }));

test('a failing write is rolled back alone; the others of its group commit', () =>
  withDir(async (dir) => {
    const s = new SqliteStore(join(dir, 'control.db'));
    try {
      const a = await s.insertNode(node(1));
      const results = await Promise.allSettled([
        s.updateNode(a.id, { endpoints: ['192.0.2.9:1'] }),
        s.transaction(async (tx) => {
          await tx.updateNode(a.id, { homeRelay: 'r1' });
          // the same hostname as node 1: the unique column refuses it, and this transaction's update goes with it
          await tx.insertNode({ ...node(2), hostname: 'h1' });
        }),
        s.insertNode(node(3)),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      const n1 = await s.getNode(a.id);
      assert.deepEqual(n1?.endpoints, ['192.0.2.9:1']);
      assert.equal(n1?.homeRelay, null, 'the failed transaction left nothing');
      assert.ok(await s.getNodeByKey('nk3'));
      assert.equal(await s.getNodeByKey('nk2'), null);
    } finally {
      await s.close();
    }
  }));

test('a failing commit refuses every write of its group; what was committed before stays, and writes work again', () =>
  withDir(async (dir) => {
    const path = join(dir, 'control.db');
    let s = new SqliteStore(path);
    try {
      await Promise.all([1, 2].map((i) => s.insertNode(node(i))));
      const failedBefore = s.commitStats.failedCommits;
      const results = await withFsyncs(async (c) => {
        c.failNext = true;
        return Promise.allSettled([3, 4, 5].map((i) => s.insertNode(node(i))));
      });
      for (const r of results) {
        assert.equal(r.status, 'rejected', 'no write of the failed group is answered as done');
        assert.match(String((r as PromiseRejectedResult).reason), /I\/O error/i);
      }
      assert.equal(s.commitStats.failedCommits, failedBefore + 1, 'one group, one failed commit');
      assert.deepEqual(
        (await s.listNodes()).map((n) => n.nodeKey),
        ['nk1', 'nk2'],
      );
      await s.insertNode(node(6));
      await s.close();
      s = new SqliteStore(path);
      assert.deepEqual(
        (await s.listNodes()).map((n) => n.nodeKey),
        ['nk1', 'nk2', 'nk6'],
        'after reopening: the committed nodes, none of the failed group',
      );
    } finally {
      await s.close();
    }
  }));

test('a group holds at most the configured writes; a read waits for the uncommitted group; close commits the open group', () =>
  withDir(async (dir) => {
    const path = join(dir, 'control.db');
    let s = new SqliteStore(path, { groupCommitMaxWrites: 4 });
    try {
      const before = s.commitStats.commits;
      const writes = Array.from({ length: 10 }, (_, i) => s.insertNode(node(i + 1)));
      // asked for while the writes are uncommitted: it runs once they have committed, and sees them all
      const listed = s.listNodes();
      await Promise.all(writes);
      assert.equal((await listed).length, 10);
      assert.equal(s.commitStats.commits - before, 3, '10 writes, at most 4 a commit');
      // writes still in their group when the store closes: committed, and their callers answered
      const late = [11, 12].map((i) => s.insertNode(node(i)));
      await s.close();
      await Promise.all(late);
      s = new SqliteStore(path);
      assert.equal((await s.listNodes()).length, 12);
    } finally {
      await s.close();
    }
  }));

test('writes in later turns of the event loop join a group while its window is open', () =>
  withDir(async (dir) => {
    const s = new SqliteStore(join(dir, 'control.db'), { groupCommitWindowMs: 1000 });
    try {
      const before = s.commitStats.commits;
      let firstDone = false;
      const first = s.insertNode(node(1)).then(() => (firstDone = true));
      // a later turn (as a request arriving a few ms after another): its write lands in the same open group
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      assert.equal(firstDone, false, 'the first write is not answered while its group is open');
      await Promise.all([first, s.insertNode(node(2))]);
      assert.equal(s.commitStats.commits - before, 1, 'two writes turns apart, one commit');
    } finally {
      await s.close();
    }
  }));

test('a commit costs one fsync (the write-ahead log); at rest the file needs no WAL', () =>
  withDir(async (dir) => {
    const path = join(dir, 'control.db');
    const s = new SqliteStore(path);
    const [a] = await Promise.all([s.insertNode(node(1))]);
    const fsyncs = await withFsyncs(async (c) => {
      const start = c.count;
      await s.updateNode(a!.id, { lastSeenMs: 7 });
      return c.count - start;
    });
    await s.close();
    assert.equal(fsyncs, 1, 'one write, one commit, one fsync');
    assert.equal(existsSync(`${path}-wal`), false, 'closed: the log is folded into the file');
    // byte 18 of the header: 1 for a rollback journal, 2 for WAL; at rest any SQLite (an older meshctl) opens it
    assert.equal(fs.readFileSync(path)[18], 1);
  }));
