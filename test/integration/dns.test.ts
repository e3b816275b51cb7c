// MagicDNS end to end, in namespaces on one LAN segment: a control server, a
// stand-in "internet" resolver and a split-DNS resolver in the control
// namespace, and three nodes. Each node namespace has its own resolv.conf
// (/etc/netns/NS/resolv.conf, which `ip netns exec` mounts over
// /etc/resolv.conf), so the daemon's "direct" mode is checked with glibc's real
// resolver (getent, ping) and the file compared byte for byte: after `down`,
// and at the next start after a `kill -9`. A node with --accept-dns=false keeps
// its file untouched while `meshctl dns query` still answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { DnsStatus, Status } from '../../src/localapi/types.js';
import { packageRoot } from '../../src/cli/version.js';
import { rootSkipReason } from '../helpers/root.js';
import { eventually, MeshLab, type MeshNode } from '../helpers/mesh.js';
import { must, NETNS_ETC, type RunResult } from '../helpers/netns.js';

const skip = rootSkipReason('nft', 'ss', 'ping');

/** What every node namespace's resolv.conf holds before meshctl: the "internet" resolver in the control namespace. */
const ORIGINAL = '# the namespace resolver, before meshctl\nnameserver 10.88.0.1\noptions timeout:1 attempts:2\n';
const UPSTREAM = '10.88.0.1';
const UPSTREAM_ANSWER = '192.0.2.10';
const CORP_RESOLVER = '10.88.0.2';
const CORP_ANSWER = '192.0.2.20';
const FIXTURE = join(packageRoot(), 'dist', 'test', 'integration', 'fixtures', 'dns-upstream.js');

const resolvConf = (n: MeshNode): string => readFileSync(join(NETNS_ETC, n.ns, 'resolv.conf'), 'utf8');

/** The end of the node's daemon log, for an assertion's message. */
const logTail = (n: MeshNode): string => {
  try {
    return `\n--- ${n.name} daemon.log:\n${readFileSync(join(n.stateDir, 'daemon.log'), 'utf8').split('\n').slice(-15).join('\n')}`;
  } catch {
    return '';
  }
};

async function status(n: MeshNode): Promise<Status> {
  const r = await n.run(['status', '--json']);
  assert.equal(r.code, 0, `status --json on ${n.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

async function dnsStatus(n: MeshNode): Promise<DnsStatus> {
  const r = await n.run(['dns', 'status', '--json']);
  assert.equal(r.code, 0, `dns status on ${n.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as DnsStatus;
}

/** A command in the node's namespace, so glibc reads that namespace's resolv.conf. */
async function inNs(n: MeshNode, cmd: string[], timeoutMs = 15_000): Promise<RunResult> {
  const { sh } = await import('../helpers/netns.js');
  return sh('ip', ['netns', 'exec', n.ns, ...cmd], timeoutMs);
}

/** getent's addresses for `name` (ahostsv4/ahostsv6), or [] when it does not resolve. */
async function getent(n: MeshNode, db: 'ahostsv4' | 'ahostsv6', name: string): Promise<string[]> {
  const r = await inNs(n, ['getent', db, name]);
  if (r.code !== 0) return [];
  return [...new Set(r.stdout.split('\n').map((l) => l.split(/\s+/)[0]!))].filter(Boolean);
}

test('MagicDNS: names, forwarding, split DNS, records, and the OS resolver restored', { skip, timeout: 120_000 }, async (t) => {
  const m = new MeshLab();
  let upstream: ChildProcess | null = null;
  const asked: { at: string; name: string; type: string }[] = [];
  const namespaces: string[] = [];
  try {
    await m.build(3, {}, ORIGINAL);
    namespaces.push(...m.nodes.map((n) => n.ns));
    await m.startControl();
    // the two resolvers outside the mesh: UPSTREAM on the control's LAN address, CORP_RESOLVER on a second one
    await must('ip', ['-n', m.controlNs, 'addr', 'add', `${CORP_RESOLVER}/32`, 'dev', 'lo']);
    upstream = m.lab.spawn(m.controlNs, [process.execPath, FIXTURE, `${UPSTREAM}:53=${UPSTREAM_ANSWER}`, `${CORP_RESOLVER}:53=${CORP_ANSWER}`]);
    let out = '';
    upstream.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        if (line.startsWith('{')) asked.push(JSON.parse(line) as { at: string; name: string; type: string });
        else if (line === 'ready') asked.push({ at: 'ready', name: '', type: '' });
      }
    });
    await eventually('the test resolvers listen', async () => asked.some((a) => a.at === 'ready'), 10_000, 50);

    const [n1, n2, n3] = m.nodes as [MeshNode, MeshNode, MeshNode];
    const key = await m.authKey(['--reusable']);
    const ips = new Map<string, string[]>();

    await t.test('three nodes come up; two point their resolv.conf at the mesh resolver, one (accept-dns=false) is left alone', async () => {
      for (const [n, extra] of [
        [n1, []],
        [n2, ['--hostname', 'nas']],
        [n3, ['--accept-dns=false']],
      ] as const) {
        const r = await m.up(n, ['--auth-key', key, ...extra]);
        assert.equal(r.code, 0, `up ${n.name}: ${r.stderr}`);
        ips.set(n.name, (await status(n)).self!.ips);
      }
      for (const n of [n1, n2]) {
        const text = resolvConf(n);
        assert.match(text, /^nameserver 100\.100\.100\.100$/m, text + logTail(n));
        assert.match(text, /^search mesh\.internal$/m, text);
        assert.doesNotMatch(text, /nameserver 10\.88\.0\.1/, 'the original resolver is kept as the upstream, not listed');
      }
      assert.equal(resolvConf(n3), ORIGINAL, 'accept-dns=false leaves the file byte for byte');
    });

    const nasV4 = (): string => ips.get('node2')!.find((a) => !a.includes(':'))!;
    const nasV6 = (): string => ips.get('node2')!.find((a) => a.includes(':'))!;

    await t.test('glibc on another node resolves nas.mesh.internal (A and AAAA), and the bare name through the search domain', async () => {
      assert.deepEqual(await getent(n1, 'ahostsv4', 'nas.mesh.internal'), [nasV4()]);
      assert.deepEqual(await getent(n1, 'ahostsv6', 'nas.mesh.internal'), [nasV6()]);
      assert.deepEqual(await getent(n1, 'ahostsv4', 'NAS.Mesh.Internal'), [nasV4()], 'names are case-insensitive');
      const ping = await inNs(n1, ['ping', '-c1', '-W2', 'nas']);
      assert.equal(ping.code, 0, `ping nas: ${ping.stdout}${ping.stderr}`);
      assert.match(ping.stdout, /nas\.mesh\.internal/);
      // status shows full names
      const s = await status(n1);
      assert.equal(s.peers.find((p) => p.name === 'nas')?.dnsName, 'nas.mesh.internal');
      assert.equal(s.self?.dnsName, 'node1.mesh.internal');
      const text = await n1.run(['status']);
      assert.match(text.stdout, /^\S+\s+nas\.mesh\.internal\s+linux\s/m);
      // the CLI takes the full name wherever it takes a peer's name
      const ip = await n1.run(['ip', '-4', 'nas.mesh.internal']);
      assert.equal(ip.stdout.trim(), nasV4(), ip.stderr);
      const pong = await n1.run(['ping', '-c', '1', '--until-direct=false', 'NAS.mesh.internal.']);
      assert.equal(pong.code, 0, pong.stderr);
      assert.match(pong.stdout, /^pong from nas /m);
    });

    await t.test('a name outside the mesh goes to the resolver the namespace had before', async () => {
      const before = asked.length;
      assert.deepEqual(await getent(n1, 'ahostsv4', 'www.example.net'), [UPSTREAM_ANSWER]);
      assert.ok(
        asked.slice(before).some((a) => a.at === `${UPSTREAM}:53` && a.name.toLowerCase() === 'www.example.net'),
        JSON.stringify(asked.slice(before)),
      );
      const d = await dnsStatus(n1);
      assert.equal(d.mode, 'direct');
      assert.deepEqual(d.upstreams, [`${UPSTREAM}:53`]);
      assert.equal(d.listening.length, 2, JSON.stringify(d.listening));
      assert.ok((d.counters?.forwarded ?? 0) >= 1, JSON.stringify(d.counters));
    });

    await t.test('split DNS and an extra record from the control server reach the nodes', async () => {
      const route = await m.meshctl(['control', 'dns', 'route', 'add', 'corp.example', CORP_RESOLVER, '--state-dir', m.controlDir]);
      assert.equal(route.code, 0, route.stderr);
      const rec = await m.meshctl(['control', 'dns', 'record', 'add', 'printer.home.arpa', '100.64.7.7', '--state-dir', m.controlDir]);
      assert.equal(rec.code, 0, rec.stderr);
      await eventually(
        'intranet.corp.example from its own resolver',
        async () => (await getent(n1, 'ahostsv4', 'intranet.corp.example'))[0] === CORP_ANSWER,
        5000,
        100,
      );
      assert.ok(asked.some((a) => a.at === `${CORP_RESOLVER}:53` && a.name.toLowerCase() === 'intranet.corp.example'));
      await eventually('printer.home.arpa', async () => (await getent(n1, 'ahostsv4', 'printer.home.arpa'))[0] === '100.64.7.7', 5000, 100);
      const d = await dnsStatus(n1);
      assert.deepEqual(d.routes, [{ domain: 'corp.example', resolvers: [CORP_RESOLVER] }]);
    });

    await t.test('not an open resolver: a query from the LAN to the resolver address is refused', async () => {
      // the control namespace routes 100.100.100.100 to node1's LAN address: node1's kernel delivers it locally
      await must('ip', ['-n', m.controlNs, 'route', 'add', '100.100.100.100/32', 'via', n1.lanIp]);
      const client = join(packageRoot(), 'dist', 'src', 'dns', 'client.js');
      const script = `import { queryDns } from ${JSON.stringify(client)};
        const a = await queryDns({ host: '100.100.100.100', port: 53 }, 'nas.mesh.internal', 'A', { timeoutMs: 2000 });
        process.stdout.write(a.rcode + ' ' + a.answers.length);`;
      const { sh } = await import('../helpers/netns.js');
      const r = await sh('ip', ['netns', 'exec', m.controlNs, process.execPath, '--input-type=module', '-e', script], 10_000);
      assert.equal(r.stdout.trim(), 'REFUSED 0', `from the LAN: ${r.stdout}${r.stderr}`);
      assert.ok(((await dnsStatus(n1)).counters?.refused ?? 0) >= 1);
    });

    await t.test('accept-dns=false: the file is untouched, and `meshctl dns query` still asks the resolver', async () => {
      assert.equal(resolvConf(n3), ORIGINAL);
      const q = await n3.run(['dns', 'query', 'nas.mesh.internal']);
      assert.equal(q.code, 0, q.stderr);
      assert.match(q.stdout, new RegExp(`^nas\\.mesh\\.internal\\.\\t\\d+\\tIN\\tA\\t${nasV4().replace(/\./g, '\\.')}$`, 'm'));
      const six = await n3.run(['dns', 'query', 'nas.mesh.internal', 'AAAA']);
      assert.match(six.stdout, new RegExp(`\\tAAAA\\t${nasV6()}$`, 'm'));
      const nx = await n3.run(['dns', 'query', 'nosuch.mesh.internal']);
      assert.equal(nx.code, 8, `NXDOMAIN exits 8: ${nx.stderr}`);
      const fwd = await n3.run(['dns', 'query', 'www.example.net']);
      assert.equal(fwd.code, 0, fwd.stderr);
      assert.match(fwd.stdout, new RegExp(`\\tA\\t${UPSTREAM_ANSWER.replace(/\./g, '\\.')}$`, 'm'), 'forwarded to the resolver resolv.conf names');
      const d = await dnsStatus(n3);
      assert.equal(d.mode, 'off');
      assert.equal(d.acceptDns, false);
    });

    await t.test('a resolver that cannot start is a health line: the mesh stays up and the OS is not pointed at it', async () => {
      const down = await n3.run(['down']);
      assert.equal(down.code, 0, down.stderr);
      // something else holds UDP port 53 on every address of node3's namespace
      const squatter = m.lab.spawn(n3.ns, [
        process.execPath,
        '-e',
        "require('node:dgram').createSocket('udp4').bind(53, '0.0.0.0', () => process.stdout.write('bound\\n'))",
      ]);
      let said = '';
      squatter.stdout!.on('data', (c: Buffer) => (said += c.toString()));
      try {
        await eventually('the squatter holds port 53', async () => said.includes('bound'), 5000, 20);
        const up = await n3.run(['up', '--accept-dns=true']);
        assert.equal(up.code, 0, `up succeeds without its resolver: ${up.stderr}`);
        const s = await status(n3);
        assert.equal(s.backendState, 'Running');
        assert.ok(
          s.health.some((h) => /^DNS: configuring DNS failed: .*EADDRINUSE/.test(h)),
          JSON.stringify(s.health),
        );
        assert.equal(resolvConf(n3), ORIGINAL, 'the OS is never pointed at a resolver that does not listen');
        const ping = await inNs(n3, ['ping', '-c1', '-W2', ips.get('node1')![0]!]);
        assert.equal(ping.code, 0, `the mesh carries traffic: ${ping.stdout}`);
        const text = await n3.run(['status']);
        assert.match(text.stdout, /^# Health: DNS: configuring DNS failed/m);
      } finally {
        squatter.kill('SIGKILL');
      }
      // back as it was for the rest: accept-dns=false
      assert.equal((await n3.run(['set', '--accept-dns=false'])).code, 0);
    });

    await t.test('a rename and a deletion at the control server are answered within a second or two', async () => {
      const renamed = await n2.run(['up', '--hostname', 'fileserver']);
      assert.equal(renamed.code, 0, renamed.stderr);
      const t0 = Date.now();
      await eventually('node1 answers the new name', async () => (await n1.run(['dns', 'query', 'fileserver.mesh.internal'])).code === 0, 3000, 50);
      await eventually('node1 no longer answers the old one', async () => (await n1.run(['dns', 'query', 'nas.mesh.internal'])).code === 8, 3000, 50);
      assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`);
      const del = await m.meshctl(['control', 'nodes', 'delete', 'fileserver', '--state-dir', m.controlDir]);
      assert.equal(del.code, 0, del.stderr);
      const t1 = Date.now();
      await eventually('node1 forgets the deleted node', async () => (await n1.run(['dns', 'query', 'fileserver.mesh.internal'])).code === 8, 3000, 50);
      assert.ok(Date.now() - t1 < 3000, `${Date.now() - t1} ms`);
      // the deleted node's daemon stopped its engine: its own file is back as it was
      await eventually('node2 restored its resolv.conf', async () => resolvConf(n2) === ORIGINAL, 5000, 100);
    });

    await t.test('`down` restores resolv.conf byte for byte; `up` points it at the mesh again', async () => {
      const down = await n1.run(['down']);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(resolvConf(n1), ORIGINAL);
      const up = await n1.run(['up']);
      assert.equal(up.code, 0, up.stderr);
      assert.match(resolvConf(n1), /^nameserver 100\.100\.100\.100$/m, logTail(n1));
    });

    await t.test('after `kill -9`, the next start restores resolv.conf byte for byte before anything else', async () => {
      const pid = Number(readFileSync(join(n1.stateDir, 'daemon.pid'), 'utf8'));
      process.kill(pid, 'SIGKILL');
      await eventually('daemon gone', async () => (await n1.run(['status'])).code === 1, 5000);
      assert.match(resolvConf(n1), /^nameserver 100\.100\.100\.100$/m, 'the crash left the file pointing at the dead resolver');
      // the restarted daemon restores at start; with accept-dns=false it does not configure the file again
      const up = await n1.run(['up', '--accept-dns=false']);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(resolvConf(n1), ORIGINAL, logTail(n1));
      const log = readFileSync(join(n1.stateDir, 'daemon.log'), 'utf8');
      assert.match(log, /DNS: at start, restored/);
      // and the resolver still answers for scripts
      const q = await n1.run(['dns', 'query', 'node3.mesh.internal']);
      assert.equal(q.code, 0, q.stderr);
    });

    await t.test('`set --accept-dns=true` configures the OS at once; SIGTERM puts it back', async () => {
      const set = await n1.run(['set', '--accept-dns=true']);
      assert.equal(set.code, 0, set.stderr);
      assert.match(resolvConf(n1), /^nameserver 100\.100\.100\.100$/m);
      const pid = Number(readFileSync(join(n1.stateDir, 'daemon.pid'), 'utf8'));
      process.kill(pid, 'SIGTERM');
      await eventually('daemon gone', async () => (await n1.run(['status'])).code === 1, 5000);
      assert.equal(resolvConf(n1), ORIGINAL);
    });
  } finally {
    await m.cleanup();
  }
  for (const ns of namespaces) assert.equal(existsSync(join(NETNS_ETC, ns)), false, `${NETNS_ETC}/${ns} is removed in cleanup`);
});
