// `meshctl status --json` asks the daemon for the text it prints (status?format=pretty) and writes it as it came, with
// no parse and no second serialisation of megabytes; the real bin/meshctl against a stand-in daemon on a unix socket.
// A body the daemon does not mark as that text (a daemon of another version) is parsed and written as before, and one
// marked so but holding a control character is never written as it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import { LOCALAPI, STATUS_FORMAT_HEADER, type Status } from '../../src/localapi/types.js';
import { printableStatusText } from '../../src/cli/fast-status.js';

const status: Status = {
  version: '0',
  backendState: 'Running',
  self: { name: 'me', dnsName: null, ips: ['100.64.0.1'], nodeKey: 'k', os: 'linux', ifname: 'meshctl0', listenPort: 1, endpoints: [] },
  control: { url: 'https://c', connected: true, lastError: null },
  peers: [
    {
      name: 'nas',
      dnsName: null,
      ips: ['100.64.0.2'],
      nodeKey: 'k2',
      os: 'linux',
      online: true,
      lastSeen: null,
      active: false,
      path: { kind: 'none' },
      lastHandshake: null,
      txBytes: 0,
      rxBytes: 0,
      endpoints: [],
    },
  ],
  health: [],
  homeRegion: null,
  relays: [],
  counters: null,
};
const PRETTY = JSON.stringify(status, null, 2);

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

test('the daemon-marked text is printed only when it holds no control character but newlines', () => {
  const marked = { [STATUS_FORMAT_HEADER]: 'pretty' };
  assert.equal(printableStatusText(PRETTY, marked), PRETTY);
  assert.equal(printableStatusText(PRETTY, {}), null);
  assert.equal(printableStatusText('{"a":"\u001b[2J"}', marked), null);
  assert.equal(printableStatusText('{"a":"\u007f"}', marked), null);
  assert.equal(printableStatusText('{\r\n}', marked), null);
});

test('status --json prints the daemon text as it is, parses a body of another daemon, and never prints a marked body with escapes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-status-json-'));
  const socket = join(dir, 'd.sock');
  let mode: 'pretty' | 'old' | 'hostile' = 'pretty';
  const asked: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    asked.push(req.url!);
    const url = new URL(req.url!, 'http://local');
    if (url.pathname !== LOCALAPI.status) return void res.writeHead(404).end('{}');
    const pretty = url.searchParams.get('format') === 'pretty';
    if (mode === 'old' || !pretty) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(status));
    const body = mode === 'hostile' ? PRETTY.replace('"nas"', '"nas\u001b[2J"') : PRETTY;
    res.writeHead(200, { 'content-type': 'application/json', [STATUS_FORMAT_HEADER]: 'pretty' }).end(body);
  });
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const r1 = await run(socket, 'status', '--json');
    assert.equal(r1.code, 0, r1.err);
    assert.equal(r1.out, `${PRETTY}\n`);
    assert.deepEqual(asked, [`${LOCALAPI.status}?format=pretty`], 'the CLI asks for the text it prints');

    mode = 'old';
    const r2 = await run(socket, 'status', '--json');
    assert.equal(r2.code, 0, r2.err);
    assert.equal(r2.out, `${PRETTY}\n`, 'a compact body is parsed and written pretty');

    mode = 'hostile';
    const r3 = await run(socket, 'status', '--json');
    assert.doesNotMatch(r3.out + r3.err, /\u001b/);
    assert.notEqual(r3.code, 0);
    assert.match(r3.err, /non-JSON/);
  } finally {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});
