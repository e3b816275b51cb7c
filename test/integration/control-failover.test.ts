// A real WireGuard tunnel across a control replica failover: two `control
// serve` replicas on one PostgreSQL, two daemons in namespaces given both
// URLs, a TCP transfer and pings between them through the tunnel. The replica
// both nodes stream from is killed with SIGKILL mid-transfer. Data does not go
// through control, so the pings show no gap longer than MAX_PING_GAP_MS and the
// transfer arrives whole (SHA-256 on both ends); the nodes move to the other
// replica, and a node that joins through it reaches both within seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Status } from '../../src/localapi/types.js';
import { packageRoot } from '../../src/cli/version.js';
import { rootSkipReason } from '../helpers/root.js';
import { postgresSkipReason, startPostgres, type PgCluster } from '../helpers/postgres.js';
import { eventually, MeshLab, type MeshNode } from '../helpers/mesh.js';
import { sh } from '../helpers/netns.js';
import { checkXfer, exitWithin, XFER_FIXTURE } from '../helpers/xfer.js';

const skip = rootSkipReason('ping') || postgresSkipReason();
const BIN = join(packageRoot(), 'bin', 'meshctl');
/** The tunnel's promise across the failover: pings every 100 ms never go this long without a reply. */
const MAX_PING_GAP_MS = 2000;
/** The transfer: 2 MB/s for 12 s, so it is under way through the kill, the reconnect and the join. */
const XFER_BYTES = 24 * 1024 * 1024;
const XFER_RATE = 2 * 1024 * 1024;
/** A change made through the surviving replica reaches both nodes within this (reconnect backoff ~1 s plus a map). */
const CHANGE_DEADLINE_MS = 8000;

interface Replica {
  url: string;
  dir: string;
  proc: ChildProcess;
}

async function status(n: MeshNode): Promise<Status> {
  const r = await n.run(['status', '--json']);
  assert.equal(r.code, 0, `status --json on ${n.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

/** `control serve --db` in the control namespace on `port`; resolves once it listens. */
async function startReplica(m: MeshLab, db: string, port: number, name: string): Promise<Replica> {
  const dir = join(m.dir, name);
  mkdirSync(dir, { mode: 0o700 });
  const proc = m.lab.spawn(m.controlNs, [process.execPath, BIN, 'control', 'serve', '--listen', `${m.controlIp}:${port}`, '--state-dir', dir, '--db', db]);
  let out = '';
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  await eventually(`replica ${name} listening (${out})`, async () => /listening on/.test(out) || proc.exitCode !== null, 20_000, 50);
  assert.equal(proc.exitCode, null, `replica ${name} exited: ${out}`);
  return { url: `https://${m.controlIp}:${port}`, dir, proc };
}

/** Replies of `ping -D -i 0.1` from `from` to `ip`, as arrival times in ms. */
function pinger(m: MeshLab, from: MeshNode, ip: string): { replies: number[]; proc: ChildProcess } {
  const proc = m.lab.spawn(from.ns, ['ping', '-D', '-n', '-i', '0.1', '-W', '1', ip]);
  const replies: number[] = [];
  let buf = '';
  proc.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const t = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(line);
      if (t) replies.push(Math.round(Number(t[1]) * 1000));
    }
  });
  return { replies, proc };
}

test('a WireGuard tunnel keeps carrying traffic while the control replica its nodes use is killed; they move to the other', {
  skip,
  timeout: 120_000,
}, async () => {
  const t0 = Date.now();
  let cluster: PgCluster | null = null;
  const m = new MeshLab();
  try {
    cluster = await startPostgres();
    const db = await cluster.createDatabase('failover_lab');
    await m.build(3);
    const [n1, n2, n3] = m.nodes as [MeshNode, MeshNode, MeshNode];
    const a = await startReplica(m, db, 8443, 'replica-a');
    // B starts with an empty state dir: it takes the control key and certificate from the database
    const b = await startReplica(m, db, 8444, 'replica-b');
    const ca = await m.meshctl(['control', 'ca', '--state-dir', a.dir]);
    assert.equal(ca.code, 0, ca.stderr);
    writeFileSync(m.caFile, ca.stdout);
    const keyOut = await m.meshctl(['control', 'authkey', 'create', '--reusable', '--state-dir', a.dir]);
    assert.equal(keyOut.code, 0, keyOut.stderr);
    const key = keyOut.stdout.trim().split('\n').pop()!;
    const up = (n: MeshNode, urls: string[]) =>
      n.run([
        'up',
        ...urls.flatMap((u) => ['--login-server', u]),
        '--control-ca',
        m.caFile,
        '--hostname',
        n.name,
        '--state-dir',
        n.stateDir,
        '--auth-key',
        key,
        '--timeout',
        '20s',
      ]);
    for (const n of [n1, n2]) {
      const r = await up(n, [a.url, b.url]);
      assert.equal(r.code, 0, `up ${n.name}: ${r.stderr}`);
    }
    for (const [from, to] of [
      [n1, n2],
      [n2, n1],
    ] as const) {
      await eventually(
        `${from.name} has a direct path to ${to.name}`,
        async () => (await status(from)).peers.some((p) => p.name === to.name && p.online && p.path.kind === 'direct'),
        20_000,
        200,
      );
    }
    for (const n of [n1, n2]) {
      const s = await status(n);
      assert.equal(s.control.url, a.url, `${n.name} streams from replica A, the first URL`);
      assert.equal(s.control.connected, true);
    }
    const ip2 = (await status(n2)).self!.ips[0]!;

    // traffic through the tunnel: pings every 100 ms, and a paced TCP transfer checked end to end
    const ping = pinger(m, n1, ip2);
    const server = m.lab.spawn(n2.ns, [process.execPath, XFER_FIXTURE, 'server', '5201']);
    let sOut = '';
    let sErr = '';
    server.stdout!.on('data', (c: Buffer) => (sOut += c.toString()));
    server.stderr!.on('data', (c: Buffer) => (sErr += c.toString()));
    await eventually('the transfer server listening', async () => sOut.includes('listening') || server.exitCode !== null, 10_000, 50);
    const client = sh('ip', ['netns', 'exec', n1.ns, process.execPath, XFER_FIXTURE, 'client', ip2, '5201', String(XFER_BYTES), String(XFER_RATE)], 60_000);
    let clientDone = false;
    void client.then(() => (clientDone = true));
    await eventually('pings answered through the tunnel', async () => ping.replies.length >= 5, 10_000, 50);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(clientDone, false, 'the transfer is still under way at the kill');

    // kill -9 the replica both nodes stream from
    const killedAt = Date.now();
    process.kill(-a.proc.pid!, 'SIGKILL');
    await new Promise((r) => (a.proc.exitCode !== null || a.proc.signalCode !== null ? r(null) : a.proc.once('exit', r)));

    // both nodes move to B
    for (const n of [n1, n2]) {
      await eventually(
        `${n.name} streaming from replica B`,
        async () => {
          const s = await status(n);
          return s.control.url === b.url && s.control.connected;
        },
        CHANGE_DEADLINE_MS,
        100,
      );
    }
    const movedMs = Date.now() - killedAt;
    // a change made through B (the only replica left): a third node joins through it, both nodes get it
    const r3 = await up(n3, [b.url]);
    assert.equal(r3.code, 0, `up node3 through B: ${r3.stderr}`);
    const joinedAt = Date.now();
    for (const n of [n1, n2]) {
      await eventually(`${n.name} has node3 in its map`, async () => (await status(n)).peers.some((p) => p.name === n3.name), CHANGE_DEADLINE_MS, 100);
    }
    const changeMs = Date.now() - joinedAt;
    assert.equal(clientDone, false, 'the transfer was still under way through the failover');

    const c = await client;
    const code = await exitWithin(server, 30_000);
    const x = checkXfer(XFER_BYTES, c, { code, out: sOut, err: sErr });
    const stopAt = Date.now();
    ping.proc.kill('SIGINT');
    const window = ping.replies.filter((t) => t >= killedAt - 1000 && t <= stopAt);
    let gap = 0;
    for (let i = 1; i < window.length; i++) gap = Math.max(gap, window[i]! - window[i - 1]!);
    process.stderr.write(
      `failover lab: nodes on replica B ${movedMs} ms after A was killed; node3 joined through B seen by both in ${changeMs} ms;` +
        ` longest ping gap ${gap} ms over ${window.length} replies; transfer ${x.bytes} bytes intact, longest stall ${x.maxGapMs} ms;` +
        ` test took ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    assert.ok(window.length > 20, `pings answered around the failover: ${window.length}`);
    assert.ok(gap < MAX_PING_GAP_MS, `the tunnel went ${gap} ms without a ping reply`);
    assert.ok(x.maxGapMs < MAX_PING_GAP_MS, `the transfer stalled ${x.maxGapMs} ms`);
  } finally {
    await m.cleanup();
    await cluster?.stop();
  }
});
