// systemd readiness (src/util/sd-notify.ts): real AF_UNIX datagram sockets,
// made here through koffi as systemd makes its notify socket, receive what
// the control server, the relay and the node daemon send: READY=1 once they
// serve, STOPPING=1 on SIGTERM. Path and abstract ('@') names both work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { koffi } from '../../src/util/koffi.js';
import { sdNotify, statusLine, unixAddress } from '../../src/util/sd-notify.js';
import { packageRoot } from '../../src/cli/version.js';
import { rootSkipReason } from '../helpers/root.js';
import { Lab } from '../helpers/netns.js';

const BIN = join(packageRoot(), 'bin', 'meshctl');
const l = koffi.load('libc.so.6');
const socket = l.func('int socket(int, int, int)') as (d: number, t: number, p: number) => number;
const bind = l.func('int bind(int, void *, uint32)') as (fd: number, a: Buffer, n: number) => number;
const recv = l.func('long recv(int, _Out_ void *, size_t, int)') as (fd: number, b: Buffer, n: number, f: number) => number;
const close = l.func('int close(int)') as (fd: number) => number;
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;

/** A bound, non-blocking AF_UNIX datagram socket, as systemd's notify socket is. */
function listener(name: string): { messages: string[]; poll(): void; close(): void } {
  const fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert.ok(fd >= 0);
  const a = unixAddress(name)!;
  assert.equal(bind(fd, a.addr, a.len), 0, `bind ${name}: errno ${koffi.errno()}`);
  const messages: string[] = [];
  const buf = Buffer.alloc(4096);
  return {
    messages,
    poll: () => {
      for (let n; (n = recv(fd, buf, buf.length, 0)) > 0; ) messages.push(buf.toString('utf8', 0, n));
    },
    close: () => void close(fd),
  };
}

async function until(what: string, l: { poll(): void; messages: string[] }, re: RegExp, proc?: ChildProcess, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    l.poll();
    const m = l.messages.find((x) => re.test(x));
    if (m) return m;
    if (Date.now() > deadline || proc?.exitCode != null) throw new Error(`${what}: no ${re} within ${ms} ms (got ${JSON.stringify(l.messages)})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('sdNotify sends one datagram to a path or an abstract socket; nothing without NOTIFY_SOCKET', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-notify-'));
  const path = join(dir, 'notify');
  const abstract = `@meshctl-test-${randomBytes(6).toString('hex')}`;
  const a = listener(path);
  const b = listener(abstract);
  try {
    assert.equal(sdNotify('READY=1\nSTATUS=ok', { NOTIFY_SOCKET: path }), true);
    assert.equal(sdNotify(`READY=1\n${statusLine('x\ny=1')}`, { NOTIFY_SOCKET: abstract }), true);
    assert.equal(sdNotify('READY=1', {}), false);
    assert.equal(sdNotify('READY=1', { NOTIFY_SOCKET: join(dir, 'none') }), false);
    assert.equal(sdNotify('READY=1', { NOTIFY_SOCKET: `/${'x'.repeat(200)}` }), false, 'a name longer than sun_path');
    a.poll();
    b.poll();
    assert.deepEqual(a.messages, ['READY=1\nSTATUS=ok']);
    assert.deepEqual(b.messages, ['READY=1\nSTATUS=x y=1'], 'a status stays one line');
  } finally {
    a.close();
    b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

async function lifecycle(what: string, run: (env: NodeJS.ProcessEnv) => ChildProcess): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-notify-'));
  const path = join(dir, 'notify');
  const l = listener(path);
  const p = run({ ...process.env, NOTIFY_SOCKET: path });
  let err = '';
  p.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  try {
    const ready = await until(`${what} ready (${err})`, l, /^READY=1\n/m, p);
    assert.match(ready, /^READY=1\nSTATUS=\S/);
    p.kill('SIGTERM');
    await until(`${what} stopping`, l, /^STOPPING=1/m);
  } finally {
    if (p.exitCode === null) p.kill('SIGKILL');
    l.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('control serve and relay serve send READY=1 once they listen and STOPPING=1 on SIGTERM', { timeout: 60_000 }, async () => {
  for (const [what, args] of [
    ['control', ['control', 'serve', '--listen', '127.0.0.1:0']],
    ['relay', ['relay', 'serve', '--listen', '127.0.0.1:0', '--stun-port', '0', '--region', 'test']],
  ] as const) {
    const dir = mkdtempSync(join(tmpdir(), `meshctl-${what}-`));
    try {
      await lifecycle(what, (env) => spawn(process.execPath, [BIN, ...args, '--state-dir', dir], { env, stdio: ['ignore', 'ignore', 'pipe'] }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('the node daemon, in a namespace of its own, sends READY=1 once its local API answers', { skip: rootSkipReason(), timeout: 60_000 }, async () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-daemon-'));
  try {
    const ns = await lab.netns('sd');
    const args = [process.execPath, BIN, '--socket', join(dir, 'd.sock'), 'daemon', '--state-dir', join(dir, 'state'), '--ifname', 'mt0'];
    await lifecycle('daemon', (env) => lab.spawn(ns, args, env));
  } finally {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
