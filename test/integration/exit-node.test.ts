// An exit node in the lab: a server on the lab's "internet" sees the exit node's public address as the client's
// source, control and relay connections stay up meanwhile (meshctl's own sockets carry the fwmark and bypass the
// tunnel), `--exit-node=` restores the client's routes exactly, and a killed exit node blocks the client's internet
// traffic (no leak from its own address) with status saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { CONTROL_IP, type LabNode } from '../../src/lab/topology.js';
import type { Status } from '../../src/localapi/types.js';
import { packageRoot } from '../../src/cli/version.js';
import { rootSkipReason } from '../helpers/root.js';
import { sh } from '../helpers/netns.js';

const skip = rootSkipReason('nft', 'ss', 'ping');
const BIN = join(packageRoot(), 'bin', 'meshctl');
const SERVER_PORT = 8080;

async function status(l: Lab, n: LabNode): Promise<Status> {
  const r = await l.meshctl(n, ['status', '--json']);
  assert.equal(r.code, 0, `${n.name}: ${r.err}`);
  return JSON.parse(r.out) as Status;
}

/** One TCP connection from `n` to the internet server: the source address it saw, or null when it could not connect. */
async function whoAmI(n: LabNode, timeoutMs = 3000): Promise<string | null> {
  const js = `const s=require('net').connect(${SERVER_PORT},'${CONTROL_IP}');let b='';s.setTimeout(${timeoutMs},()=>process.exit(2));
    s.on('data',d=>b+=d);s.on('end',()=>{console.log(b);process.exit(0)});s.on('error',()=>process.exit(3));`;
  const r = await sh('ip', ['netns', 'exec', n.ns, process.execPath, '-e', js], timeoutMs + 5000);
  return r.code === 0 ? r.stdout.trim() : null;
}

/** Every route of every table in `n`'s namespace, as ip prints it (JSON). */
async function routes(n: LabNode): Promise<unknown> {
  const r = await sh('ip', ['-n', n.ns, '-j', 'route', 'show', 'table', 'all']);
  return JSON.parse(r.stdout);
}

async function rules(n: LabNode): Promise<unknown> {
  return JSON.parse((await sh('ip', ['-n', n.ns, '-j', 'rule', 'show'])).stdout);
}

test('exit node in the lab: egress through it, control and relays stay up, routes restored, fail closed', { skip, timeout: 300_000 }, async (t) => {
  const name = `x${randomBytes(4).readUInt32BE(0).toString(36).padStart(7, '0').slice(-5)}`;
  const l = await Lab.create({ name, kinds: ['easy', 'easy'], bin: BIN, dir: `/tmp/meshctl-lab-${name}` });
  const seen: string[] = [];
  let server: ReturnType<typeof import('node:child_process').spawn> | null = null;
  try {
    await l.build({ name, kinds: [], bin: BIN });
    await l.startServers();
    await l.upAll();
    const [exit, client] = l.s.nodes as [LabNode, LabNode];
    const ctlDir = join(l.s.dir, 'control');

    // the "internet" server: in the control server's namespace, it answers each connection with its source address
    const { spawn } = await import('node:child_process');
    server = spawn(
      'ip',
      [
        'netns',
        'exec',
        l.s.controlNs,
        process.execPath,
        '-e',
        `require('net').createServer(c=>{console.log(c.remoteAddress);c.end(c.remoteAddress)}).listen(${SERVER_PORT},'${CONTROL_IP}',()=>console.log('ready'))`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      seen.push(
        ...d
          .toString()
          .split('\n')
          .filter((x) => x && x !== 'ready'),
      );
    });
    await l.waitFor('internet server', async () => out.includes('ready'), 10_000);
    assert.equal(await whoAmI(client), client.wanIp, 'without an exit node the client leaves through its own NAT');
    // the kernel adds the local routes of IPv6 link-local addresses once their duplicate check ends: wait for that first
    await l.waitFor('IPv6 addresses settled', async () => (await sh('ip', ['-n', client.ns, '-6', 'addr', 'show', 'tentative'])).stdout.trim() === '', 15_000);
    const before = { routes: await routes(client), rules: await rules(client) };

    await t.test('an exit node that is not approved is refused and nothing changes', async () => {
      const r = await l.meshctl(client, ['up', '--exit-node', exit.name]);
      assert.notEqual(r.code, 0);
      assert.match(r.err, /is not an approved exit node/);
      assert.deepEqual(await routes(client), before.routes);
      assert.equal((await status(l, client)).exitNode ?? null, null);
    });

    await t.test('the exit node advertises, is approved, and reports forwarding', async () => {
      await sh('ip', ['netns', 'exec', exit.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
      const r = await l.meshctl(exit, ['up', '--advertise-exit-node']);
      assert.equal(r.code, 0, r.err);
      const a = await sh(process.execPath, [BIN, 'control', 'routes', 'approve', exit.name, '0.0.0.0/0', '--state-dir', ctlDir]);
      assert.equal(a.code, 0, a.stderr);
      await l.waitFor('approval in the client map', async () => (await status(l, client)).peers.some((p) => p.name === exit.name && p.exitNode), 15_000);
      await l.waitFor('forwarding warning', async () => (await status(l, exit)).health.some((h) => /IPv4 forwarding is off/.test(h)), 15_000);
      await sh('ip', ['netns', 'exec', exit.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    });

    await t.test('the client goes out through the exit node; control and relays stay connected', async () => {
      const r = await l.meshctl(client, ['up', '--exit-node', exit.name]);
      assert.equal(r.code, 0, r.err);
      await l.waitFor('egress through the exit node', async () => (await whoAmI(client)) === exit.wanIp, 20_000);
      const s = await status(l, client);
      assert.equal(s.exitNode?.state, 'active');
      assert.equal(s.control.connected, true);
      assert.ok(s.relays.length > 0 && s.relays.every((x) => x.connected), `relays: ${JSON.stringify(s.relays)}`);
      // the control connection carries the mark: it goes through the uplink, not the tunnel
      const ss = await sh('ip', ['netns', 'exec', client.ns, 'ss', '-tnH', 'state', 'established', 'dst', CONTROL_IP]);
      assert.match(ss.stdout, new RegExp(`${client.lanIp.replace(/\./g, '\\.')}:\\d+\\s+${CONTROL_IP.replace(/\./g, '\\.')}:8443`));
    });

    await t.test('LAN access: the host’s LAN stays local only with --exit-node-allow-lan-access', async () => {
      const gw = `192.168.${client.index}.1`;
      const ping = async () => (await sh('ip', ['netns', 'exec', client.ns, 'ping', '-c', '1', '-W', '1', gw], 10_000)).code === 0;
      assert.equal(await ping(), false, 'without LAN access the LAN goes into the tunnel too');
      const r = await l.meshctl(client, ['up', '--exit-node-allow-lan-access']);
      assert.equal(r.code, 0, r.err);
      const table52 = (await sh('ip', ['-n', client.ns, 'route', 'show', 'table', '52'])).stdout;
      assert.match(table52, new RegExp(`^192\\.168\\.${client.index}\\.0/24 dev eth0`, 'm'));
      await l.waitFor('the LAN reached directly with LAN access', ping, 15_000);
      // the routes were just rebuilt: a connection may fail while they settle, but none may leave by the uplink
      await l.waitFor(
        'the internet still through the exit node',
        async () => {
          const seen = await whoAmI(client);
          assert.notEqual(seen, client.wanIp, 'internet traffic left by the uplink while LAN access was turned on');
          return seen === exit.wanIp;
        },
        15_000,
      );
    });

    await t.test('--exit-node= turns it off and restores the routes and rules exactly', async () => {
      const r = await l.meshctl(client, ['up', '--exit-node=']);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(await routes(client), before.routes);
      assert.deepEqual(await rules(client), before.rules);
      assert.equal(await whoAmI(client), client.wanIp);
    });

    await t.test('the exit node killed: internet traffic is blocked, not leaked, and status says so', async () => {
      const r = await l.meshctl(client, ['up', '--exit-node', exit.name]);
      assert.equal(r.code, 0, r.err);
      await l.waitFor('egress through the exit node', async () => (await whoAmI(client)) === exit.wanIp, 20_000);
      const leaksBefore = seen.filter((a) => a.endsWith(client.wanIp)).length;
      process.kill(l.s.pids[`${exit.name}-daemon`]!, 'SIGKILL');
      // a map update arrives over the (marked) control connection: the exit node is offline
      await l.waitFor(
        'the offline health line',
        async () => (await status(l, client)).health.some((h) => h.includes(`exit node ${exit.name} is offline: traffic to the internet is blocked`)),
        30_000,
      );
      const s = await status(l, client);
      assert.equal(s.exitNode?.state, 'offline');
      assert.equal(s.control.connected, true);
      assert.equal(await whoAmI(client, 2000), null, 'no connection to the internet');
      assert.equal(seen.filter((a) => a.endsWith(client.wanIp)).length, leaksBefore, 'the server saw nothing from the client’s own address');
      const table52 = (await sh('ip', ['-n', client.ns, 'route', 'show', 'table', '52'])).stdout;
      assert.match(table52, /^default dev /m, 'the default route into the mesh stays');
    });
  } finally {
    server?.kill('SIGKILL');
    await l.down();
  }
});
