// Local API timeouts: a connection that sends no whole request in time is
// closed, a kept-alive one that goes quiet is closed, and a response the
// daemon is still writing (the `up` progress stream) is never cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { LocalApiServer } from '../../src/daemon/localapi-server.js';
import { LocalClient } from '../../src/localapi/client.js';
import { LOCALAPI, type UpLine } from '../../src/localapi/types.js';
import { BackendDouble, socketDir } from './localapi-helpers.js';

const TIMEOUT_MS = 1000;
/** generous for a loaded 2-core machine, yet well under Node's own defaults (60 s headers, 5 s keep-alive) */
const CLOSE_DEADLINE_MS = 4000;

/** Opens a connection, writes `first`, and resolves when the server closes it: what it sent back and after how long. */
function closedAfter(sock: string, first: string, then?: (s: Socket, received: () => string) => void): Promise<{ ms: number; received: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(sock);
    let received = '';
    let start = 0;
    s.setEncoding('utf8');
    s.on('data', (c: string) => (received += c));
    s.on('connect', () => {
      start = Date.now();
      if (first) s.write(first);
      then?.(s, () => received);
    });
    s.on('error', () => {});
    s.on('close', () => resolve({ ms: Date.now() - start, received }));
    setTimeout(
      () => (s.destroy(), reject(new Error(`still open after ${CLOSE_DEADLINE_MS} ms; received ${JSON.stringify(received)}`))),
      CLOSE_DEADLINE_MS,
    ).unref();
  });
}

async function withServer(backend: BackendDouble, f: (sock: string) => Promise<void>): Promise<void> {
  const { sock, done } = socketDir();
  const api = new LocalApiServer(sock, backend, { requestTimeoutMs: TIMEOUT_MS, keepAliveTimeoutMs: TIMEOUT_MS, logger: () => {} });
  await api.start();
  try {
    await f(sock);
  } finally {
    await api.stop();
    done();
  }
}

test('a connection that sends nothing, or only part of its headers, is closed after the request timeout', async () => {
  await withServer(new BackendDouble(), async (sock) => {
    const silent = await closedAfter(sock, '');
    assert.ok(silent.ms >= TIMEOUT_MS - 100, `closed after ${silent.ms} ms, before the timeout`);
    const partial = await closedAfter(sock, `GET ${LOCALAPI.status} HTTP/1.1\r\nhost: meshctl\r\n`);
    assert.match(partial.received, /^HTTP\/1\.1 408/, 'a started request is answered 408');
    const body = await closedAfter(sock, `POST ${LOCALAPI.ping} HTTP/1.1\r\nhost: meshctl\r\ncontent-length: 100\r\n\r\n{"peer":`);
    assert.ok(body.ms >= TIMEOUT_MS - 100, 'a body that never ends is cut too');
  });
});

test('a kept-alive connection is closed once it has been quiet for the keep-alive timeout after a response', async () => {
  await withServer(new BackendDouble(), async (sock) => {
    const r = await closedAfter(sock, `GET ${LOCALAPI.status} HTTP/1.1\r\nhost: meshctl\r\n\r\n`);
    assert.match(r.received, /^HTTP\/1\.1 200/);
    assert.match(r.received, /"version":"test"/);
  });
});

test('an `up` that works (silently) longer than the timeouts streams to its end', async () => {
  const backend = new BackendDouble();
  backend.upMs = 3 * TIMEOUT_MS;
  await withServer(backend, async (sock) => {
    const lines: UpLine[] = [];
    await new LocalClient(sock).stream(LOCALAPI.up, {}, (l) => lines.push(l as UpLine));
    assert.equal(lines.at(-1)?.type, 'done', JSON.stringify(lines));
    assert.deepEqual(lines[0], { type: 'progress', message: 'working' });
  });
});
