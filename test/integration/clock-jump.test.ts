// A daemon whose wall clock is an hour off, and then stepped while it runs
// (libfaketime, reading its offset from a file the test rewrites; monotonic
// time left alone, as the kernel does when CLOCK_REALTIME is stepped), against
// a control server and a peer on the real clock: it registers and keeps its
// map stream (it learns the server's time), its handshake timestamps never go
// back (its peer saw later ones), and a step either way starts no storm of
// handshakes and stops no traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Status } from '../../src/localapi/types.js';
import { rootSkipReason } from '../helpers/root.js';
import { eventually, MeshLab, type MeshNode } from '../helpers/mesh.js';
import { sh } from '../helpers/netns.js';

const LIBFAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
].find((p) => existsSync(p));
const skip = rootSkipReason('ping', 'faketime') || (LIBFAKETIME ? false : 'libfaketime.so.1 not found (Debian package faketime)');

async function status(n: MeshNode, env: Record<string, string> = {}): Promise<Status> {
  const r = await n.run(['status', '--json'], 30_000, { env });
  assert.equal(r.code, 0, `status --json on ${n.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

const ping = async (from: MeshNode, ip: string, count: number): Promise<number> => {
  const r = await sh('ip', ['netns', 'exec', from.ns, 'ping', '-n', '-c', String(count), '-i', '0.2', '-W', '2', ip], 60_000);
  return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
};

async function handshakesInitiated(n: MeshNode): Promise<number> {
  const r = await n.run(['metrics']);
  const m = /^meshctl_daemon_handshakes_initiated_total(?:\{[^}]*\})? (\d+)$/m.exec(r.stdout);
  assert.ok(m, `no handshake counter in ${n.name}'s metrics: ${r.stderr}`);
  return Number(m[1]);
}

test('a daemon an hour off, then stepped back and forth', { skip, timeout: 300_000 }, async (t) => {
  const m = new MeshLab();
  try {
    await m.build(2);
    await m.startControl();
    const [n1, n2] = m.nodes as [MeshNode, MeshNode];
    const key = await m.authKey(['--reusable']);
    // node2's offset lives in this file; libfaketime reads it again at most once a second
    const offsetFile = join(m.dir, 'node2-faketime');
    const setOffset = (spec: string): void => writeFileSync(offsetFile, `${spec}\n`);
    setOffset('+1h');
    const skewed = {
      LD_PRELOAD: LIBFAKETIME!,
      FAKETIME_TIMESTAMP_FILE: offsetFile,
      FAKETIME_CACHE_DURATION: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
    const up = (n: MeshNode, env: Record<string, string> = {}) =>
      n.run(
        ['up', '--login-server', m.url, '--control-ca', m.caFile, '--hostname', n.name, '--state-dir', n.stateDir, '--timeout', '30s', '--auth-key', key],
        60_000,
        {
          env,
        },
      );
    const r1 = await up(n1);
    assert.equal(r1.code, 0, `up node1: ${r1.stderr}`);
    const ip1 = (await status(n1)).self!.ips[0]!;

    await t.test('an hour ahead, it registers and gets its map (it learns the offset from the server)', async () => {
      const r = await up(n2, skewed);
      assert.equal(r.code, 0, `up node2 with its clock an hour ahead: ${r.stderr}`);
      await eventually('node2 sees node1 in its map', async () => (await status(n2, skewed)).peers.some((p) => p.online), 30_000, 250);
      assert.ok((await ping(n2, ip1, 5)) >= 1, 'node2 → node1');
    });

    await t.test('stepped back an hour and restarted, its handshakes still complete with the peer that saw the later timestamps', async () => {
      setOffset('+0');
      await new Promise((r) => setTimeout(r, 1500));
      const down = await n2.run(['down'], 30_000, { env: skewed });
      assert.equal(down.code, 0, down.stderr);
      const r = await up(n2, skewed);
      assert.equal(r.code, 0, `up node2 after the step back: ${r.stderr}`);
      await eventually('node2 → node1 after the step back', async () => (await ping(n2, ip1, 2)) >= 1, 30_000, 250);
    });

    await t.test('steps of an hour either way while traffic flows: no handshake storm, no lost traffic', async () => {
      const before = await handshakesInitiated(n2);
      // 30 s of pings (150), the clock stepped +1 h at 10 s and back at 20 s
      const pinging = ping(n2, ip1, 150);
      await new Promise((r) => setTimeout(r, 10_000));
      setOffset('+1h');
      await new Promise((r) => setTimeout(r, 10_000));
      setOffset('+0');
      const received = await pinging;
      const started = (await handshakesInitiated(n2)) - before;
      process.stderr.write(`clock steps: ${received}/150 echoes answered, ${started} handshakes started in ~30 s\n`);
      assert.ok(received >= 140, `${received}/150 echoes answered across the steps`);
      assert.ok(started <= 2, `${started} handshakes started across two steps of an hour`);
    });
  } finally {
    await m.cleanup();
  }
});
