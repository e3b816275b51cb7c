// Subnet routers end to end, in namespaces: a LAN host without meshctl behind a
// router node, a client with --accept-routes that reaches it by ping and TCP
// (seeing SNAT on and off), routes that carry nothing until approved and
// nothing once rejected or withdrawn, a dishonest client whose packets for a
// rejected route the router's destination check drops, and failover between
// two routers for one prefix when the primary is killed and when its link is cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Status } from '../../src/localapi/types.js';
import { rootSkipReason } from '../helpers/root.js';
import { eventually, MeshLab, type MeshNode } from '../helpers/mesh.js';
import { must, sh } from '../helpers/netns.js';

// outside root it skips loudly (and fails in CI): rootSkipReason says so on stderr
const skip = rootSkipReason('nft', 'ss', 'ping');

const LAN_HOST = '192.168.77.10';
const LAN_PREFIX = '192.168.77.0/24';
const REJECTED_HOST = '192.168.88.10';
const REJECTED_PREFIX = '192.168.88.0/24';
const TCP_PORT = 7777;

async function status(n: MeshNode): Promise<Status> {
  const r = await n.run(['status', '--json']);
  assert.equal(r.code, 0, `status --json on ${n.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

async function ping(from: MeshNode, ip: string): Promise<boolean> {
  return (await sh('ip', ['netns', 'exec', from.ns, 'ping', '-c', '1', '-W', '1', ip], 10_000)).code === 0;
}

/** Connects to the LAN host's TCP server, which answers with the address it sees the connection come from. */
async function tcpSource(from: MeshNode, ip: string): Promise<string | null> {
  const script = `const s=require('net').connect(${TCP_PORT},'${ip}');let d='';s.setTimeout(1500,()=>process.exit(2));s.on('data',c=>d+=c);s.on('end',()=>{console.log(d.trim());process.exit(0)});s.on('error',()=>process.exit(1));`;
  const r = await sh('ip', ['netns', 'exec', from.ns, process.execPath, '-e', script], 10_000);
  return r.code === 0 ? r.stdout.trim() : null;
}

async function table52(n: MeshNode): Promise<string[]> {
  const r = await sh('ip', ['-n', n.ns, '-j', 'route', 'show', 'table', '52']);
  return r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as { dst: string }[]).map((x) => x.dst) : [];
}

/** Milliseconds until `fn` holds, polled every 100 ms; fails after `limitMs`. */
async function within(what: string, limitMs: number, fn: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  await eventually(what, async () => await fn(), limitMs, 100);
  return Date.now() - t0;
}

test('subnet routers: a LAN host behind a router, SNAT on and off, approval, the destination check, failover', { skip, timeout: 300_000 }, async (t) => {
  const m = new MeshLab();
  try {
    await m.build(3);
    await m.startControl();
    const [router, client, router2] = m.nodes as [MeshNode, MeshNode, MeshNode];
    // the LAN: a bridge in its own namespace, the LAN host on it, each router with a leg into it
    const lan = await m.lab.netns('lan');
    await must('ip', ['-n', lan, 'link', 'add', 'br1', 'type', 'bridge']);
    await must('ip', ['-n', lan, 'addr', 'add', `${LAN_HOST}/24`, 'dev', 'br1']);
    await must('ip', ['-n', lan, 'addr', 'add', `${REJECTED_HOST}/24`, 'dev', 'br1']);
    await must('ip', ['-n', lan, 'link', 'set', 'br1', 'up']);
    for (const [i, r] of [router, router2].entries()) {
      const a = `l${m.lab.id.slice(-6)}a${i}`;
      const b = `l${m.lab.id.slice(-6)}b${i}`;
      await must('ip', ['link', 'add', a, 'netns', r.ns, 'type', 'veth', 'peer', 'name', b, 'netns', lan]);
      await must('ip', ['-n', lan, 'link', 'set', b, 'master', 'br1', 'up']);
      await must('ip', ['-n', r.ns, 'addr', 'add', `192.168.77.${i + 1}/24`, 'dev', a]);
      await must('ip', ['-n', r.ns, 'addr', 'add', `192.168.88.${i + 1}/24`, 'dev', a]);
      await must('ip', ['-n', r.ns, 'link', 'set', a, 'up']);
    }
    const server = `require('net').createServer((s)=>s.end(s.remoteAddress.replace(/^::ffff:/,'')+'\\n')).listen(${TCP_PORT},'0.0.0.0')`;
    m.lab.spawn(lan, [process.execPath, '-e', server]);
    const key = await m.authKey(['--reusable']);
    const approve = async (node: string, prefix: string, verb = 'approve'): Promise<void> => {
      const r = await m.meshctl(['control', 'routes', verb, node, prefix, '--state-dir', m.controlDir]);
      assert.equal(r.code, 0, `routes ${verb} ${node} ${prefix}: ${r.stderr}`);
    };

    await t.test('a router with forwarding off says so in up and in status, with the command that fixes it', async () => {
      const r = await m.up(router, ['--auth-key', key, '--advertise-routes', `${LAN_PREFIX},${REJECTED_PREFIX}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /IPv4 forwarding is off.*sysctl -w net\.ipv4\.ip_forward=1/);
      const s = await status(router);
      assert.ok(
        s.health.some((h) => /IPv4 forwarding is off/.test(h)),
        s.health.join('\n'),
      );
      assert.deepEqual(s.self!.routes!.advertised, [LAN_PREFIX, REJECTED_PREFIX]);
      assert.deepEqual(s.self!.routes!.approved, []);
      await must('ip', ['netns', 'exec', router.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      const after = await status(router);
      assert.ok(!after.health.some((h) => /forwarding is off/.test(h)), after.health.join('\n'));
      const text = await router.run(['status']);
      assert.match(text.stdout, /# Advertised routes: 192\.168\.77\.0\/24 \(awaiting approval\)/);
    });

    await t.test('an unapproved route carries nothing', async () => {
      const r = await m.up(client, ['--auth-key', key, '--accept-routes'], {});
      assert.equal(r.code, 0, r.stderr);
      // the mesh itself works (the router's own address answers) while its unapproved route does not
      const routerIp = (await status(router)).self!.ips[0]!;
      await within('the client reaches the router over the mesh', 10_000, () => ping(client, routerIp));
      assert.deepEqual(await table52(client), []);
      assert.equal(await ping(client, LAN_HOST), false);
    });

    await t.test('approved: the client installs it in table 52 and reaches the LAN host; SNAT shows the router', async () => {
      await approve('node1', LAN_PREFIX);
      await within('the client reaches the LAN host', 10_000, () => ping(client, LAN_HOST));
      assert.deepEqual(await table52(client), [LAN_PREFIX]);
      const rules = await sh('ip', ['-n', client.ns, 'rule', 'show']);
      for (const pref of ['5210', '5230', '5250', '5270']) assert.match(rules.stdout, new RegExp(`^${pref}:`, 'm'));
      assert.equal(await tcpSource(client, LAN_HOST), '192.168.77.1', 'SNAT: the LAN host sees the router');
      const s = await status(client);
      const peer = s.peers.find((p) => p.name === 'node1')!;
      assert.deepEqual(peer.routes, [{ prefix: LAN_PREFIX, primary: true, installed: true, why: null }]);
      const text = await client.run(['status']);
      assert.match(text.stdout, /# Routes via node1: 192\.168\.77\.0\/24 installed/);
    });

    await t.test('--snat-subnet-routes=false: the LAN host sees the client', async () => {
      const r = await router.run(['set', '--snat-subnet-routes=false']);
      assert.equal(r.code, 0, r.stderr);
      await must('ip', ['-n', lan, 'route', 'add', '100.64.0.0/10', 'via', '192.168.77.1']);
      const clientIp = (await status(client)).self!.ips[0]!;
      await within('the LAN host sees the client address', 5000, async () => (await tcpSource(client, LAN_HOST)) === clientIp);
      assert.equal((await router.run(['set', '--snat-subnet-routes=true'])).code, 0);
      await within('SNAT back on', 5000, async () => (await tcpSource(client, LAN_HOST)) === '192.168.77.1');
    });

    await t.test('a rejected route carries nothing within 2 s', async () => {
      await approve('node1', REJECTED_PREFIX);
      await within('the second prefix works once approved', 10_000, () => ping(client, REJECTED_HOST));
      await approve('node1', REJECTED_PREFIX, 'reject');
      const ms = await within('rejected: gone from the client', 2000, async () => !(await table52(client)).includes(REJECTED_PREFIX));
      assert.equal(await ping(client, REJECTED_HOST), false, `still carried ${ms} ms after the reject`);
    });

    await t.test("a dishonest client's packets for the rejected route are dropped by the router's destination check", async () => {
      // restart the client's daemon as a dishonest one: its engine gives node1 the rejected prefix, and a route sends it there
      assert.equal((await client.run(['down'])).code, 0);
      const pids = (await sh('ip', ['netns', 'pids', client.ns])).stdout.split(/\s+/).filter(Boolean);
      for (const p of pids) process.kill(Number(p), 'SIGKILL');
      const r = await client.run(['up', '--timeout', '20s'], 30_000, { env: { MESHCTL_TEST_EXTRA_ALLOWED_IPS: `node1=${REJECTED_PREFIX}` } });
      assert.equal(r.code, 0, r.stderr);
      await within('the client reaches the LAN host again', 10_000, () => ping(client, LAN_HOST));
      await must('ip', ['-n', client.ns, 'route', 'add', REJECTED_PREFIX, 'dev', 'meshctl0']);
      const before = (await status(router)).self!.routes!.droppedDestination;
      assert.equal(await ping(client, REJECTED_HOST), false, 'the router forwarded a packet for a rejected route');
      const after = (await status(router)).self!.routes!.droppedDestination;
      assert.ok(after > before, `drops counted: ${before} → ${after}`);
      await must('ip', ['-n', client.ns, 'route', 'del', REJECTED_PREFIX, 'dev', 'meshctl0']);
    });

    await t.test('bad routes get a one-line error and change nothing', async () => {
      const before = (await status(router)).self!.routes!.advertised;
      const mesh = await router.run(['set', '--advertise-routes=100.64.0.0/24']);
      assert.notEqual(mesh.code, 0);
      assert.match(mesh.stderr, /100\.64\.0\.0\/24 overlaps the mesh prefix/);
      const hostBits = await router.run(['set', '--advertise-routes=192.168.77.1/24']);
      assert.notEqual(hostBits.code, 0);
      assert.match(hostBits.stderr, /192\.168\.77\.1\/24 has bits set.*192\.168\.77\.0\/24/);
      assert.equal(hostBits.stderr.trim().split('\n').length, 1, hostBits.stderr);
      assert.deepEqual((await status(router)).self!.routes!.advertised, before);
    });

    await t.test('a withdrawn route carries nothing within 2 s', async () => {
      assert.equal((await router.run(['set', `--advertise-routes=${REJECTED_PREFIX}`])).code, 0);
      await within('withdrawn: gone from the client', 2000, async () => !(await table52(client)).includes(LAN_PREFIX));
      assert.equal(await ping(client, LAN_HOST), false);
      assert.equal((await router.run(['set', `--advertise-routes=${LAN_PREFIX}`])).code, 0);
      await within('advertised again', 10_000, () => ping(client, LAN_HOST));
    });

    await t.test('failover: the primary killed with SIGKILL, then the new primary with its link cut; each within 15 s', async () => {
      await must('ip', ['netns', 'exec', router2.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      const r = await m.up(router2, ['--auth-key', key, '--advertise-routes', LAN_PREFIX]);
      assert.equal(r.code, 0, r.stderr);
      await approve('node3', LAN_PREFIX);
      await eventually('node3 is a standby for the prefix', async () => {
        const p = (await status(client)).peers.find((x) => x.name === 'node3');
        return p?.routes?.[0]?.primary === false && p.routes[0].why?.includes('not primary');
      });
      // kill -9 the primary's daemon
      for (const p of (await sh('ip', ['netns', 'pids', router.ns])).stdout.split(/\s+/).filter(Boolean)) process.kill(Number(p), 'SIGKILL');
      const killedMs = await within('via node3 after node1 was killed', 15_000, async () => (await tcpSource(client, LAN_HOST)) === '192.168.77.2');
      t.diagnostic(`failover after kill -9: ${killedMs} ms`);
      // node1 comes back: its stale rules and SNAT table are cleaned up; node3 stays primary (no move back)
      assert.equal((await m.up(router, [])).code, 0);
      assert.equal(await tcpSource(client, LAN_HOST), '192.168.77.2', 'no move back while node3 is online');
      // cut node3's link to the mesh (its LAN leg stays)
      const links = JSON.parse((await must('ip', ['-n', router2.ns, '-j', 'addr', 'show'])).trim()) as { ifname: string; addr_info: { local: string }[] }[];
      const meshLeg = links.find((l) => l.addr_info.some((a) => a.local === router2.lanIp))!.ifname;
      await must('ip', ['-n', router2.ns, 'link', 'set', meshLeg, 'down']);
      const cutMs = await within('via node1 after node3 was cut off', 15_000, async () => (await tcpSource(client, LAN_HOST)) === '192.168.77.1');
      t.diagnostic(`failover after a cut link: ${cutMs} ms`);
    });

    await t.test('down removes table 52, the rules and the SNAT table', async () => {
      assert.equal((await client.run(['down'])).code, 0);
      assert.deepEqual(await table52(client), []);
      const rules = await sh('ip', ['-n', client.ns, 'rule', 'show']);
      assert.doesNotMatch(rules.stdout, /^52[1-7]0:/m);
      assert.equal((await router.run(['down'])).code, 0);
      const nft = await sh('ip', ['netns', 'exec', router.ns, 'nft', 'list', 'ruleset']);
      assert.doesNotMatch(nft.stdout, /meshctl/);
    });
  } finally {
    await m.cleanup();
  }
});
