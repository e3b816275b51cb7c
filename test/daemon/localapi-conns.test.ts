// Local API connection caps (src/daemon/localapi-conns.ts): one local user
// cannot take the daemon's file descriptors, and root always gets in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { LocalApiServer } from '../../src/daemon/localapi-server.js';
import { MAX_CONNS_PER_UID } from '../../src/daemon/localapi-conns.js';
import { LocalClient } from '../../src/localapi/client.js';
import { LOCALAPI, type Status } from '../../src/localapi/types.js';
import { BackendDouble, ConnectionHolder, NOBODY, OTHER_UID, canSwitchUsers, socketDir, startDaemon } from './localapi-helpers.js';

test('one unprivileged user holds at most MAX_CONNS_PER_UID connections; the rest are refused at once and root still gets status', async (t) => {
  if (!canSwitchUsers(t)) return;
  const { sock, done } = socketDir();
  const logs: string[] = [];
  const api = new LocalApiServer(sock, new BackendDouble(), { logger: (m) => logs.push(m) });
  await api.start();
  const flood = new ConnectionHolder(NOBODY, sock, 100);
  const other = new ConnectionHolder(OTHER_UID, sock, 5);
  try {
    await flood.settle((h) => h.held + h.closed === 100 && h.held <= MAX_CONNS_PER_UID);
    assert.equal(flood.held, MAX_CONNS_PER_UID, `nobody holds ${flood.held} connections`);
    assert.equal(flood.closed, 100 - MAX_CONNS_PER_UID);
    assert.match(flood.refusal, /uid 65534 has 32 local API connections open, the most one user may hold: close some/);
    await other.settle((h) => h.held === 5);
    assert.equal(other.held, 5, 'another user is not held to the first one’s cap');
    const s = await new LocalClient(sock).get<Status>(LOCALAPI.status);
    assert.equal(s.version, 'test');
    assert.equal(logs.filter((l) => /connection refused/.test(l)).length, 1, `refusals are logged once a minute: ${logs.join(' | ')}`);
  } finally {
    await flood.stop();
    await other.stop();
    await api.stop();
    done();
  }
});

test('all users together are held to the total, and root keeps its reserve above it', async (t) => {
  if (!canSwitchUsers(t)) return;
  const { sock, done } = socketDir();
  const api = new LocalApiServer(sock, new BackendDouble(), { limits: { perUid: 4, total: 6, privilegedReserve: 2 }, logger: () => {} });
  await api.start();
  const a = new ConnectionHolder(NOBODY, sock, 10);
  let b: ConnectionHolder | null = null;
  const mine: Socket[] = [];
  try {
    await a.settle((h) => h.held + h.closed === 10 && h.held <= 4);
    assert.equal(a.held, 4);
    // the second user starts once the first holds its share, so which one gets what is certain
    b = new ConnectionHolder(OTHER_UID, sock, 10);
    await b.settle((h) => h.held + h.closed === 10 && h.held <= 2);
    assert.equal(b.held, 2, 'the second user gets what is left of the total');
    assert.match(b.refusal, /the most all users together may hold; root can still connect/);
    // root: one idle connection from the reserve, and a status on the other
    mine.push(connect(sock));
    await new Promise((r) => mine[0]!.once('connect', r));
    const s = await new LocalClient(sock).get<Status>(LOCALAPI.status);
    assert.equal(s.backendState, 'Stopped');
  } finally {
    for (const m of mine) m.destroy();
    await a.stop();
    await b?.stop();
    await api.stop();
    done();
  }
});

async function statusWithin(sock: string, deadlineMs: number): Promise<Status> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await new LocalClient(sock).get<Status>(LOCALAPI.status);
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

test('the daemon with 128 fds: a user flooding its socket is capped, root gets status, and running out of fds is no uncaught error', async (t) => {
  if (!canSwitchUsers(t)) return;
  const { dir, sock, done } = socketDir();
  const daemon = await startDaemon(sock, join(dir, 'state'), 128);
  const flood = new ConnectionHolder(NOBODY, sock, 300);
  const held: Socket[] = [];
  try {
    await flood.settle((h) => h.held + h.closed === 300 && h.held <= MAX_CONNS_PER_UID);
    assert.ok(flood.held <= MAX_CONNS_PER_UID, `nobody holds ${flood.held} of the daemon's 128 fds`);
    assert.equal((await statusWithin(sock, 5000)).backendState, 'NeedsLogin', 'root is served while nobody floods');
    // root (privileged, capped far above 128) now opens more than the fd table holds: accepts fail in the daemon
    for (let i = 0; i < 200; i++) {
      const s = connect(sock);
      s.on('error', () => {});
      held.push(s);
    }
    await Promise.all(held.map((s) => new Promise((r) => (s.once('connect', r), s.once('close', r)))));
    for (const s of held) s.destroy();
    assert.equal((await statusWithin(sock, 10_000)).backendState, 'NeedsLogin', 'served again once fds are free');
    assert.doesNotMatch(daemon.log(), /internal error|uncaught/i);
  } finally {
    for (const s of held) s.destroy();
    await flood.stop();
    await daemon.stop();
    done();
  }
});
