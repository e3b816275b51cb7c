// `meshctl bugreport`: one .tar.gz with the expected members, nothing secret
// in it. A local API server on a real unix socket stands in for the daemon
// and answers status, netcheck and dns status with known secrets planted in
// them; the state dir holds a state.json with private keys and a daemon log
// full of secrets. After decompressing, none of those bytes may appear
// anywhere in the archive, while the public node keys stay. Without a daemon
// the report is still written, saying what is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { packageRoot } from '../../src/cli/version.js';
import { tarArchive, tarMembers } from '../../src/util/tar.js';
import { makeRedactor, REDACTED } from '../../src/util/redact.js';
import { findTool } from '../../src/util/tools.js';

const bin = join(packageRoot(), 'bin', 'meshctl');
const key = (): string => randomBytes(32).toString('base64');
const hex = (n: number): string => randomBytes(n).toString('hex');

function secrets() {
  const nodePriv = key();
  return {
    nodePriv,
    nodePrivHex: Buffer.from(nodePriv, 'base64').toString('hex'),
    discoPriv: key(),
    authKey: `mskey-${hex(6)}-${hex(24)}`,
    join: `mesh1:${randomBytes(60).toString('base64url')}`,
    meshKey: hex(32),
    token: `tok${hex(10)}`,
    bearer: `Ab9${randomBytes(45).toString('base64url')}`,
    pemBody: randomBytes(48).toString('base64'),
    strayKey: key(),
  };
}

type Secrets = ReturnType<typeof secrets>;

function plant(dir: string, s: Secrets, pub: string): void {
  const state = {
    version: 1,
    nodePrivateKey: s.nodePriv,
    discoPrivateKey: s.discoPriv,
    prefs: { loginServer: 'https://ctl.example:8443', hostname: 'box', ifname: 'lo', authKey: s.authKey, controlCaPem: '-----BEGIN CERTIFICATE-----\nMIIB\n' },
    node: { name: 'box', nodeKey: pub },
  };
  writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
  const log = [
    ...Array.from({ length: 50 }, (_, i) => `2026-12-03T10:00:${String(i).padStart(2, '0')}Z meshctl daemon: old line ${i}`),
    `2026-12-03T10:01:00Z meshctl daemon: loaded node private key ${s.nodePriv}`,
    `2026-12-03T10:01:01Z meshctl daemon: key bytes ${s.nodePrivHex}`,
    `2026-12-03T10:01:02Z meshctl daemon: up with auth key ${s.authKey}`,
    `2026-12-03T10:01:03Z meshctl daemon: join string ${s.join}`,
    `2026-12-03T10:01:04Z meshctl daemon: relay mesh key ${s.meshKey}`,
    `2026-12-03T10:01:05Z meshctl daemon: control said token=${s.token}`,
    `2026-12-03T10:01:06Z meshctl daemon: -----BEGIN PRIVATE KEY-----\n${s.pemBody}\n-----END PRIVATE KEY-----`,
    `2026-12-03T10:01:07Z meshctl daemon: a key nobody announced ${s.strayKey}`,
    `2026-12-03T10:01:08Z meshctl daemon: peer ${pub} handshake ok`,
  ];
  writeFileSync(join(dir, 'daemon.log'), `${log.join('\n')}\n`);
}

function fakeDaemon(socket: string, s: Secrets, pub: string, peerPub: string): Promise<Server> {
  const status = {
    version: '0.1.0',
    backendState: 'Running',
    self: { name: 'box', dnsName: null, ips: ['100.64.0.1'], nodeKey: pub, os: 'linux', ifname: 'lo', listenPort: 41641, endpoints: [] },
    control: { url: 'https://ctl.example:8443', connected: false, lastError: `register: auth key ${s.authKey} refused` },
    peers: [{ name: 'peer', nodeKey: peerPub, ips: ['100.64.0.2'], path: { kind: 'none' }, online: true }],
    health: [`authKey=${s.authKey}`, `bearer ${s.bearer}`],
    homeRegion: null,
    relays: [],
    counters: { rxPackets: 12, droppedNoRule: 3, privateKey: s.discoPriv },
  };
  const answers: Record<string, unknown> = {
    '/localapi/v1/status': status,
    '/localapi/v1/netcheck': {
      udp: true,
      ipv4: '7.0.113.11:41641',
      regionLatencyMs: {},
      portMapping: [],
      relays: [],
      note: `Authorization: Bearer ${s.bearer}`,
    },
    '/localapi/v1/dns/status': { enabled: true, suffix: 'mesh', resolvers: ['100.100.100.100'], errors: [`join=${s.join}`] },
  };
  const server = createServer((req, res) => {
    const a = answers[req.url ?? ''];
    res.writeHead(a ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(a ?? { error: { code: 'NOT_FOUND', message: 'no such path' } }));
  });
  return new Promise((resolve) => server.listen(socket, () => resolve(server)));
}

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { env: { ...process.env, MESHCTL_SOCKET: '', ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c));
    p.stderr.on('data', (c: Buffer) => (err += c));
    p.on('close', (code) => resolve({ code: code ?? 1, out, err }));
  });
}

test('bugreport: the archive has every part and none of the planted secrets', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-bugreport-'));
  const s = secrets();
  const pub = key();
  const peerPub = key();
  const socket = join(dir, 'meshctld.sock');
  plant(dir, s, pub);
  const server = await fakeDaemon(socket, s, pub, peerPub);
  try {
    const out = join(dir, 'report.tar.gz');
    const r = await runCli(['--socket', socket, 'bugreport', '--output', out, '--state-dir', dir, '--log-lines', '20'], { MESHCTL_CONFIG_DIR: dir });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `${out}\n`, 'the path, alone, on stdout');
    assert.match(r.err, /asking the daemon for its status/);
    assert.equal(statSync(out).mode & 0o777, 0o600);

    const tar = gunzipSync(readFileSync(out));
    const members = tarMembers(tar);
    const names = members.map((m) => m.name.replace(/^meshctl-bugreport-\d{8}T\d{6}Z\//, ''));
    for (const n of [
      'SUMMARY.txt',
      'status.json',
      'counters.json',
      'netcheck.json',
      'dns-status.json',
      'state.json',
      'daemon.log',
      'versions.json',
      'interface.json',
      'resolv.conf',
    ]) {
      assert.ok(names.includes(n), `member ${n} missing: ${names.join(', ')}`);
    }

    const all = tar.toString('latin1');
    for (const [what, v] of Object.entries(s)) assert.ok(!all.includes(v), `${what} (${v}) is in the archive`);
    // and not in base64url either (a private key's other spelling)
    assert.ok(!all.includes(Buffer.from(s.nodePriv, 'base64').toString('base64url')));

    const text = (n: string): string => members.find((m) => m.name.endsWith(`/${n}`))!.data.toString('utf8');
    const status = JSON.parse(text('status.json'));
    assert.equal(status.self.nodeKey, pub, 'public node keys stay in full');
    assert.equal(status.peers[0].nodeKey, peerPub);
    assert.equal(JSON.parse(text('counters.json')).rxPackets, 12);
    const log = text('daemon.log');
    assert.ok(log.includes(REDACTED));
    assert.ok(log.includes(`peer ${pub} handshake ok`), 'a public key in the log stays');
    assert.equal(log.trimEnd().split('\n').length, 18, 'the last 20 lines, the three of the PEM block redacted into one');
    assert.ok(!log.includes('old line 0'));
    const st = JSON.parse(text('state.json'));
    assert.equal(st.nodePrivateKey, undefined);
    assert.equal(st.prefs.authKey, REDACTED);
    assert.equal(st.prefs.hostname, 'box');
    const iface = JSON.parse(text('interface.json'));
    assert.equal(iface.ifname, 'lo');
    if (findTool('ip')) assert.ok(JSON.stringify(iface.addresses).includes('127.0.0.1'), 'the addresses of the interface status names');
    const versions = JSON.parse(text('versions.json'));
    assert.equal(versions.node, process.version);

    // a real tar reads it too
    if (findTool('tar')) {
      const t = spawnSync('tar', ['-tzf', out], { encoding: 'utf8' });
      assert.equal(t.status, 0, t.stderr);
      assert.equal(t.stdout.trim().split('\n').length, members.length);
    }
  } finally {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bugreport without a daemon: still written, saying what is missing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-bugreport-'));
  try {
    const out = join(dir, 'r.tar.gz');
    const socket = join(dir, 'none.sock');
    const r = await runCli(['--socket', socket, 'bugreport', '--output', out, '--state-dir', join(dir, 'nostate')], { MESHCTL_CONFIG_DIR: dir });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `${out}\n`);
    assert.match(r.err, /the report is partial/);
    const members = tarMembers(gunzipSync(readFileSync(out)));
    const names = members.map((m) => m.name.split('/')[1]);
    assert.ok(names.includes('versions.json') && names.includes('resolv.conf') && names.includes('SUMMARY.txt'), names.join(', '));
    assert.ok(!names.includes('status.json'));
    const summary = members.find((m) => m.name.endsWith('/SUMMARY.txt'))!.data.toString();
    assert.ok(summary.includes(`status: meshctl is stopped (no daemon at ${socket})`), summary);
    assert.match(summary, /daemon\.log: .* does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bugreport: an output it cannot write is one line naming the fix', async () => {
  const r = await runCli(['--socket', '/nonexistent/s.sock', 'bugreport', '--output', '/nonexistent/dir/r.tar.gz', '--state-dir', '/nonexistent']);
  assert.equal(r.code, 1);
  assert.match(r.err.trim().split('\n').at(-1)!, /^cannot write \/nonexistent\/dir\/r\.tar\.gz: .*--output FILE$/);
  assert.equal(r.out, '');
});

test('redactor: secrets by value and by shape go, listed public keys stay', () => {
  const priv = key();
  const pub = key();
  const other = key();
  const r = makeRedactor([priv], [pub]);
  const out = r.text(`a ${priv} b ${pub} c ${other} d ${Buffer.from(priv, 'base64').toString('hex')} mskey-0123456789ab-${hex(24)}`);
  assert.equal(out, `a ${REDACTED} b ${pub} c ${REDACTED} d ${REDACTED} ${REDACTED}`);
  assert.equal(r.text('auth key expired at 2026-12-03'), 'auth key expired at 2026-12-03', 'a message about a key is not a key');
  assert.deepEqual(r.json({ meshKey: 'abc', token: 7, nested: [{ joinString: 'x', name: 'ok' }] }), {
    meshKey: REDACTED,
    token: 7,
    nested: [{ joinString: REDACTED, name: 'ok' }],
  });
});

test('tar: what the writer writes reads back, member for member', () => {
  const members = [
    { name: 'd/a.txt', data: Buffer.from('hello\n'), mtimeMs: 0 },
    { name: 'd/empty', data: Buffer.alloc(0), mtimeMs: 0 },
    { name: 'd/block', data: randomBytes(1024), mtimeMs: 0 },
  ];
  const tar = tarArchive(members);
  assert.equal(tar.length % 512, 0);
  assert.deepEqual(
    tarMembers(tar).map((m) => [m.name, m.data.toString('hex')]),
    members.map((m) => [m.name, m.data.toString('hex')]),
  );
  assert.throws(() => tarArchive([{ name: 'x'.repeat(101), data: Buffer.alloc(0), mtimeMs: 0 }]), /1 to 100 bytes/);
});
