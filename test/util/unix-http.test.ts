// Local HTTP servers on unix sockets (src/util/unix-http.ts) and the rate-limited log they use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeUnix, listenUnix } from '../../src/util/unix-http.js';
import { rateLimitedLog } from '../../src/util/rate-limited-log.js';

test('a unix-socket server has the asked mode, sends no Date header, and close removes the socket', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-unix-'));
  const path = join(dir, 's.sock');
  try {
    const server = await listenUnix(path, 0o600, (_req, res) => res.end('ok'));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = request({ socketPath: path, path: '/' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(headers.date, undefined, 'no Date header (its formatting maps ICU time-zone data)');
    await closeUnix(server, path);
    assert.equal(existsSync(path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function get(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

/** What Node's net.Server emits when accept(2) fails (libuv could not take the connection). */
function acceptError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`accept ${code}`), { code, errno: -24, syscall: 'accept' });
}

test('a failed accept (EMFILE/ENFILE) goes to onAcceptError, or by default to stderr, never to an uncaught exception; the socket keeps serving', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-unix-'));
  try {
    const seen: string[] = [];
    const a = join(dir, 'a.sock');
    const withHandler = await listenUnix(a, 0o600, (_req, res) => res.end('a'), { onAcceptError: (e) => seen.push(e.code ?? '') });
    withHandler.emit('error', acceptError('EMFILE'));
    withHandler.emit('error', acceptError('ENFILE'));
    assert.deepEqual(seen, ['EMFILE', 'ENFILE']);
    assert.equal(await get(a), 'a');
    await closeUnix(withHandler, a);

    const b = join(dir, 'b.sock');
    const byDefault = await listenUnix(b, 0o600, (_req, res) => res.end('b'));
    byDefault.emit('error', acceptError('EMFILE'));
    assert.equal(await get(b), 'b');
    await closeUnix(byDefault, b);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rate-limited log: the first line at once, then one per interval with the count it held back', () => {
  let now = 0;
  const out: string[] = [];
  const log = rateLimitedLog(
    (m) => out.push(m),
    60_000,
    () => now,
  );
  log('full');
  now = 1000;
  log('full');
  log('full');
  now = 61_000;
  log('full');
  assert.deepEqual(out, ['full', 'full (2 more like it since the last report)']);
});

test('a connection the admit gate refuses gets its answer and is closed before HTTP reads from it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-unix-'));
  const path = join(dir, 's.sock');
  let server: Awaited<ReturnType<typeof listenUnix>> | null = null;
  try {
    let handled = 0;
    let n = 0;
    server = await listenUnix(
      path,
      0o600,
      (_req, res) => {
        handled++;
        res.end('ok');
      },
      { admit: () => (n++ === 0 ? null : 'HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy') },
    );
    assert.equal(await get(path), 'ok');
    // a client that has not written yet reads the refusal (one that writes first may see EPIPE instead)
    const refused = await new Promise<string>((resolve) => {
      const s = connect(path);
      let got = '';
      s.setEncoding('utf8');
      s.on('data', (c: string) => (got += c));
      s.on('error', () => {});
      s.on('close', () => resolve(got));
    });
    assert.match(refused, /^HTTP\/1\.1 503 [\s\S]*\r\n\r\nbusy$/);
    assert.equal(handled, 1);
  } finally {
    await closeUnix(server, path);
    rmSync(dir, { recursive: true, force: true });
  }
});
