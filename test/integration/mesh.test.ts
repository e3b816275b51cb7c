// The mesh end to end, in namespaces on one LAN segment: a control server and
// three nodes joining with one reusable key, direct paths, traffic both ways,
// `down`, deletion at the control server, a dead and restarted control server,
// and a daemon killed with SIGKILL coming back with the same address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Status } from '../../src/localapi/types.js';
import { rootSkipReason } from '../helpers/root.js';
import { eventually, MeshLab, type MeshNode } from '../helpers/mesh.js';

const skip = rootSkipReason('nft', 'ss', 'ping');

async function status(n: MeshNode): Promise<Status> {
  const r = await n.run(['status', '--json']);
  assert.equal(r.code, 0, `status --json on ${n.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

async function pingIp(from: MeshNode, ip: string, count = 2): Promise<boolean> {
  const { sh } = await import('../helpers/netns.js');
  const p = await sh('ip', ['netns', 'exec', from.ns, 'ping', '-c', String(count), '-W', '2', '-i', '0.2', ip], 15_000);
  return p.code === 0;
}

test('a control server and three nodes on one LAN', { skip, timeout: 240_000 }, async (t) => {
  const m = new MeshLab();
  try {
    // a daemon hands memory back after 1 s without traffic here instead of 10 (util/idle-memory.ts)
    await m.build(3, { MESHCTL_IDLE_RELEASE_MS: '1000' });
    await m.startControl();
    const [n1, n2, n3] = m.nodes as [MeshNode, MeshNode, MeshNode];
    const key = await m.authKey(['--reusable']);
    const addr = new Map<string, string>();

    await t.test('all three come up with one reusable key (node3 trusting control through NODE_EXTRA_CA_CERTS)', async () => {
      for (const n of m.nodes) {
        const r = await m.up(n, ['--auth-key', key], { trust: n === n3 ? 'extra-ca' : 'pin' });
        assert.equal(r.code, 0, `up ${n.name}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^${n.name} is up: 100\\.(6[4-9]|[7-9]\\d|1[01]\\d|12[0-7])\\.`));
        const s = await status(n);
        assert.equal(s.backendState, 'Running');
        addr.set(n.name, s.self!.ips[0]!);
      }
      assert.equal(new Set(addr.values()).size, 3, 'three distinct addresses');
    });

    await t.test('each lists the other two with a direct path', async () => {
      for (const n of m.nodes) {
        await eventually(
          `${n.name} sees two direct peers`,
          async () => {
            const s = await status(n);
            const direct = s.peers.filter((p) => p.online && p.path.kind === 'direct' && p.path.trusted);
            return direct.length === 2 ? direct : null;
          },
          10_000,
          250,
        );
        const s = await status(n);
        for (const p of s.peers) {
          const other = m.nodes.find((x) => x.name === p.name)!;
          assert.equal(p.path.kind === 'direct' && p.path.endpoint, `${other.lanIp}:41641`, `${n.name} → ${p.name} goes straight to its LAN address`);
        }
      }
      const text = await n1.run(['status']);
      assert.equal(text.code, 0);
      assert.match(text.stdout, /node2\.mesh\.internal\s+linux\s+(idle|active); direct 10\.88\.0\.12:41641/);
    });

    await t.test('ICMP over the mesh addresses both ways', async () => {
      assert.ok(await pingIp(n1, addr.get('node2')!), 'node1 → node2');
      assert.ok(await pingIp(n2, addr.get('node1')!), 'node2 → node1');
      assert.ok(await pingIp(n3, addr.get('node1')!), 'node3 → node1');
      const s = await status(n1);
      const p2 = s.peers.find((p) => p.name === 'node2')!;
      assert.ok(p2.txBytes > 0 && p2.rxBytes > 0, 'traffic is counted');
      assert.match(p2.lastHandshake ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      // the counters scripts and the bench read: data routed to peers, the AEAD and the UDP reader
      const c = s.counters as { engine: { routed: number }; aead: string; udpReader: { thread: boolean; threadStarts: number } | null };
      assert.ok(c.engine.routed >= 1, JSON.stringify(c.engine));
      assert.match(c.aead, /^(openssl-evp|node-crypto|libsodium)$/);
      assert.equal(typeof c.udpReader?.thread, 'boolean', JSON.stringify(c.udpReader));
    });

    await t.test('a quiet daemon hands memory back and shows it in its counters', async () => {
      type Memory = { rss: number; heapSpaces: Record<string, number>; idleReleases: number };
      const memory = await eventually(
        'an idle release on node3',
        async () => {
          const mem = (await status(n3)).counters?.memory as Memory | undefined;
          return mem && mem.idleReleases >= 1 ? mem : null;
        },
        10_000,
        250,
      );
      assert.ok(memory.rss > 0 && (memory.heapSpaces.old_space ?? 0) > 0, JSON.stringify(memory));
    });

    await t.test('meshctl ping names the direct path', async () => {
      const r = await n1.run(['ping', 'node2']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^pong from node2 \(100\.\d+\.\d+\.\d+\) via 10\.88\.0\.12:41641 in \d+ms$/m);
      const byIp = await n2.run(['ping', '-c', '2', '--until-direct=false', addr.get('node3')!]);
      assert.equal(byIp.code, 0, byIp.stderr);
      assert.equal(byIp.stdout.trim().split('\n').length, 2);
    });

    await t.test('down removes a node from its peers’ active set; up brings it back as itself', async () => {
      const r = await n3.run(['down']);
      assert.equal(r.code, 0, r.stderr);
      await eventually(
        'node1 sees node3 offline',
        async () => {
          const p = (await status(n1)).peers.find((x) => x.name === 'node3');
          return p && !p.online && p.path.kind === 'none';
        },
        2000,
        100,
      );
      assert.equal(await pingIp(n1, addr.get('node3')!, 1), false, 'no traffic to a node that is down');
      const st = await n3.run(['status']);
      assert.equal(st.code, 1);
      assert.match(st.stderr, /meshctl is stopped\./);
      const again = await n3.run(['up']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await status(n3)).self!.ips[0], addr.get('node3'));
    });

    await t.test('bad input gets a clear error and a distinct exit status', async () => {
      const unknown = await n1.run(['ping', 'nosuchnode']);
      assert.equal(unknown.code, 4);
      assert.match(unknown.stderr, /no peer "nosuchnode"/);
      const denied = await n1.run(['down'], 30_000, { uid: 65534 });
      assert.equal(denied.code, 3, denied.stderr);
      assert.match(denied.stderr, /needs root or its operator.*sudo/);
      const readable = await n1.run(['status', '--json'], 30_000, { uid: 65534 });
      assert.equal(readable.code, 0, 'anyone may read status');
      const used = await m.authKey([]);
      // strangers in node1's namespace: own sockets, state dirs and interfaces
      const stranger = (who: string, args: string[]) =>
        m.runFresh(n1.ns, who, [
          'up',
          '--login-server',
          m.url,
          '--state-dir',
          `${m.dir}/${who}`,
          '--ifname',
          `m${who}0`,
          '--port',
          '0',
          '--timeout',
          '10s',
          '--hostname',
          who,
          ...args,
        ]);
      const wrongKey = await stranger('x', ['--control-ca', m.caFile, '--auth-key', 'mskey-000000000000-' + '0'.repeat(48)]);
      assert.equal(wrongKey.code, 6, wrongKey.stderr);
      assert.match(wrongKey.stderr, /auth key is not known/);
      const first = await stranger('y', ['--control-ca', m.caFile, '--auth-key', used]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal((await m.runFresh(n1.ns, 'y', ['down'])).code, 0, 'the extra node steps aside');
      const reuse = await stranger('z', ['--control-ca', m.caFile, '--auth-key', used]);
      assert.equal(reuse.code, 6, reuse.stderr);
      assert.match(reuse.stderr, /single-use and has been used/);
      const untrusted = await stranger('w', ['--auth-key', key]);
      assert.equal(untrusted.code, 5, untrusted.stderr);
      assert.match(untrusted.stderr, new RegExp(`cannot reach control server ${m.url.replace(/\./g, '\\.')}: its certificate is self-signed`));
      const t0 = Date.now();
      const refused = await m.runFresh(n1.ns, 'v', [
        'up',
        '--login-server',
        `https://${m.controlIp}:9`,
        '--auth-key',
        key,
        '--state-dir',
        `${m.dir}/v`,
        '--ifname',
        'mv0',
        '--port',
        '0',
        '--timeout',
        '3s',
      ]);
      assert.equal(refused.code, 5, refused.stderr);
      assert.match(refused.stderr, /cannot reach control server https:\/\/10\.88\.0\.1:9: connection refused/);
      assert.ok(Date.now() - t0 < 10_000);
      const noDaemon = await n1.run(['--socket', `${m.dir}/none.sock`, 'ping', 'node2']);
      assert.equal(noDaemon.code, 1);
      assert.match(noDaemon.stderr, /meshctl is stopped \(no daemon at/);
      const del = await m.meshctl(['control', 'nodes', 'delete', 'y', '--state-dir', m.controlDir]);
      assert.equal(del.code, 0, del.stderr);
    });

    await t.test('a node deleted at the control server drops out of every map within 2 s', async () => {
      const del = await m.meshctl(['control', 'nodes', 'delete', 'node2', '--state-dir', m.controlDir]);
      assert.equal(del.code, 0, del.stderr);
      const t0 = Date.now();
      for (const n of [n1, n3]) {
        await eventually(`${n.name} forgets node2`, async () => !(await status(n)).peers.some((p) => p.name === 'node2'), 2000, 50);
      }
      assert.ok(Date.now() - t0 <= 2500);
      const s2 = await status(n2);
      assert.equal(s2.backendState, 'NeedsLogin');
      assert.match(s2.control.lastError ?? '', /deleted at the control server/);
    });

    await t.test('traffic keeps flowing while the control server is dead; its restart keeps every address', async () => {
      const before = (await m.meshctl(['control', 'nodes', 'list', '--json', '--state-dir', m.controlDir])).stdout;
      await m.killControl();
      assert.ok(await pingIp(n1, addr.get('node3')!), 'node1 → node3 with control dead');
      assert.ok(await pingIp(n3, addr.get('node1')!), 'node3 → node1 with control dead');
      const s = await status(n1);
      assert.equal(s.control.connected, false);
      assert.ok(s.health.some((h) => /not connected to the control server/.test(h)));
      await m.startControl();
      await eventually('node1 reconnects', async () => (await status(n1)).control.connected, 15_000, 250);
      const after = (await m.meshctl(['control', 'nodes', 'list', '--json', '--state-dir', m.controlDir])).stdout;
      const pick = (j: string) => (JSON.parse(j) as { name: string; addresses: string[] }[]).map((n) => `${n.name}=${n.addresses.join(',')}`).sort();
      assert.deepEqual(pick(after), pick(before));
      assert.ok(await pingIp(n1, addr.get('node3')!));
    });

    await t.test('a daemon killed with SIGKILL comes back with `meshctl up` and the same address', async () => {
      const { sh } = await import('../helpers/netns.js');
      const pid = (await sh('cat', [`${n1.stateDir}/daemon.pid`])).stdout.trim();
      process.kill(Number(pid), 'SIGKILL');
      await eventually('daemon gone', async () => (await n1.run(['status'])).code === 1, 5000);
      const r = await n1.run(['up']);
      assert.equal(r.code, 0, r.stderr);
      const s = await status(n1);
      assert.equal(s.self!.ips[0], addr.get('node1'));
      await eventually('node1 ↔ node3 again', async () => pingIp(n1, addr.get('node3')!, 1), 10_000, 200);
    });
  } finally {
    await m.cleanup();
  }
});
