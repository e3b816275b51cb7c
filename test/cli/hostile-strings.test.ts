// Strings a peer chose (its OS, name, endpoints) and messages quoting the
// control server reach the terminal through the CLI. A local API answered by
// an older or broken daemon may pass escape sequences on, so the CLI itself
// makes every such string terminal-safe. This runs the real bin/meshctl
// against a stand-in daemon on a unix socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import { LOCALAPI, type NetcheckResponse, type PeerStatus, type PingResponse, type Status, type WhoisResponse } from '../../src/localapi/types.js';
import { formatStatus } from '../../src/cli/status-format.js';
import { formatWhois } from '../../src/cli/ip.js';
import { formatNetcheck } from '../../src/cli/netcheck.js';

const EVIL_OS = 'linux\u001b[2J\u001b[H';
const EVIL_NAME = 'nas\u001b]0;owned\u0007\u202eevil';
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

const peer: PeerStatus = {
  name: EVIL_NAME,
  dnsName: `${EVIL_NAME}.mesh.internal`,
  ips: ['100.64.0.2'],
  nodeKey: 'k',
  os: EVIL_OS,
  online: true,
  lastSeen: null,
  active: true,
  path: { kind: 'direct', endpoint: '1.2.3.4:5\u001b[1m', latencyMs: 1, trusted: true },
  lastHandshake: null,
  txBytes: 1,
  rxBytes: 2,
  endpoints: [],
};
const status: Status = {
  version: '0',
  backendState: 'Running',
  self: { name: 'me', dnsName: null, ips: ['100.64.0.1'], nodeKey: 'k', os: 'linux', ifname: 'meshctl0', listenPort: 1, endpoints: [] },
  control: { url: 'https://c', connected: false, lastError: 'x' },
  peers: [peer],
  health: ['not connected to the control server: control said \u001b[31mhi'],
  homeRegion: null,
  relays: [],
  counters: null,
};
const whois: WhoisResponse = { name: EVIL_NAME, ips: ['100.64.0.2'], nodeKey: 'k', os: EVIL_OS, self: false };
const ping: PingResponse = { name: EVIL_NAME, ip: '100.64.0.2', pong: { via: 'relay', region: 'fra\u001b[2J', latencyMs: 3 } };
const netcheck: NetcheckResponse = {
  udp: true,
  ipv4: '192.0.2.1:1\u001b[2J',
  mappingVariesByDestIP: false,
  regionLatencyMs: { 'fra\u001b[2J': 3 },
  preferredRegion: 'fra\u001b[2J',
  mapped: [],
  portMapping: ['UPnP\u001b[2J'],
  at: '2026-12-01T00:00:00.000Z',
  homeRegion: 'ams\u009b2J',
  relays: [{ region: 'nyc\u001b[2J', url: 'https://r', connected: false, latencyMs: null, lastError: null }],
};

test('the formatters leave no control character in what they print', () => {
  const out = formatStatus(status, { self: true, peers: true, activeOnly: false });
  assert.doesNotMatch(out, UNSAFE);
  assert.match(out, /linux\ufffd\[2J\ufffd\[H/);
  assert.doesNotMatch(formatWhois(whois), UNSAFE);
  assert.doesNotMatch(formatNetcheck(netcheck), UNSAFE);
});

function run(socket: string, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(packageRoot(), 'bin', 'meshctl'), '--socket', socket, ...args], { env: { ...process.env, MESHCTL_SOCKET: '' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    p.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

test('status, whois, ping, netcheck and errors through the real CLI show no escape sequence from the daemon', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-hostile-'));
  const socket = join(dir, 'd.sock');
  const server = createServer((req, res) => {
    req.resume();
    const json = (code: number, body: unknown): void => void res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const path = req.url!.split('?')[0];
    if (path === LOCALAPI.status) return json(200, status);
    if (path === LOCALAPI.whois) return json(200, whois);
    if (path === LOCALAPI.ping) return json(200, ping);
    if (path === LOCALAPI.netcheck) return json(200, netcheck);
    json(404, { error: { code: 'NOT_FOUND', message: 'control server said: \u001b[2J\u001b[Hgotcha' } });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const runs = await Promise.all([
      run(socket, 'status'),
      run(socket, 'whois', '100.64.0.2'),
      run(socket, 'ping', '-c', '1', '--until-direct=false', 'nas'),
      run(socket, 'netcheck'),
      run(socket, 'down'),
    ]);
    for (const r of runs) {
      assert.doesNotMatch(r.out, UNSAFE, r.out);
      assert.doesNotMatch(r.err, UNSAFE, r.err);
    }
    assert.match(runs[0]!.out, /100\.64\.0\.2 +nas/);
    assert.match(runs[1]!.out, /OS: +linux\ufffd\[2J/);
    assert.match(runs[2]!.out, /via relay\(fra\ufffd\[2J\)/);
    assert.match(runs[4]!.err, /control server said: \ufffd\[2J\ufffd\[Hgotcha/);
  } finally {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});
