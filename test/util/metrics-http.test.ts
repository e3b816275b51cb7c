// The scrape endpoint (src/util/metrics-http.ts): --metrics-listen parsing and
// the loopback rule, and the HTTP server on loopback: GET /metrics only, the
// connection cap and the request timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { parseMetricsListen, startMetricsServer, type MetricsSource } from '../../src/util/metrics-http.js';

const source: MetricsSource = { contentType: 'text/plain; version=0.0.4; charset=utf-8', metrics: async () => '# TYPE x gauge\nx 1\n' };

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves when the server closes `s` (or rejects after `ms`). */
function closedWithin(s: Socket, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    s.once('close', () => (clearTimeout(t), resolve()));
  });
}

test('--metrics-listen: loopback addresses parse; others need --metrics-allow-remote; bad text is refused with the form to use', () => {
  assert.deepEqual(parseMetricsListen('127.0.0.1:9101', false), { host: '127.0.0.1', port: 9101 });
  assert.deepEqual(parseMetricsListen('[::1]:9101', false), { host: '::1', port: 9101 });
  assert.deepEqual(parseMetricsListen('127.0.0.2:0', false), { host: '127.0.0.2', port: 0 });
  assert.throws(() => parseMetricsListen('0.0.0.0:9101', false), /not a loopback address.*--metrics-allow-remote/);
  assert.throws(() => parseMetricsListen('[::]:9101', false), /not a loopback address/);
  assert.throws(() => parseMetricsListen('192.0.2.1:9101', false), /not a loopback address/);
  assert.deepEqual(parseMetricsListen('0.0.0.0:9101', true), { host: '0.0.0.0', port: 9101 });
  for (const bad of ['localhost:9101', '127.0.0.1', '127.0.0.1:99999', '::1:9101', '127.0.0.1:9101\n', ' 127.0.0.1:9101', '[127.0.0.1]:9101']) {
    assert.throws(() => parseMetricsListen(bad, true), /expected IP:PORT/, bad);
  }
});

test('the endpoint answers GET /metrics with the exposition and everything else with 404', async () => {
  const s = await startMetricsServer({ host: '127.0.0.1', port: 0 }, source);
  try {
    const ok = await get(s.port, '/metrics');
    assert.equal(ok.status, 200);
    assert.equal(ok.type, source.contentType);
    assert.equal(ok.body, '# TYPE x gauge\nx 1\n');
    assert.equal((await get(s.port, '/metrics?name[]=x')).status, 200, 'query parameters (Prometheus params) are ignored');
    for (const [path, method] of [
      ['/', 'GET'],
      ['/metrics/', 'GET'],
      ['/metricsx', 'GET'],
      ['/metrics', 'POST'],
      ['/metrics', 'DELETE'],
      ['/../metrics', 'GET'],
    ] as const) {
      assert.equal((await get(s.port, path, method)).status, 404, `${method} ${path}`);
    }
  } finally {
    await s.close();
  }
});

test('a source that fails gives 500 without its message; the endpoint keeps serving', async () => {
  let fail = true;
  const logs: string[] = [];
  const flaky: MetricsSource = { contentType: 'text/plain', metrics: async () => (fail ? Promise.reject(new Error('secret detail')) : 'x 1\n') };
  const s = await startMetricsServer({ host: '127.0.0.1', port: 0 }, flaky, { logger: (m) => logs.push(m) });
  try {
    const r = await get(s.port, '/metrics');
    assert.equal(r.status, 500);
    assert.doesNotMatch(r.body, /secret/);
    assert.match(logs.join('\n'), /secret detail/);
    fail = false;
    assert.equal((await get(s.port, '/metrics')).status, 200);
  } finally {
    await s.close();
  }
});

test('connections beyond the cap are closed at accept; a client that never finishes its request is closed after the timeout', async () => {
  const s = await startMetricsServer({ host: '127.0.0.1', port: 0 }, source, { maxConnections: 2, requestTimeoutMs: 1000 });
  const open: Socket[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = connect(s.port, '127.0.0.1');
      await new Promise((r) => c.once('connect', r));
      c.write('GET /metr'); // a partial request: the connection is held
      open.push(c);
    }
    const extra = connect(s.port, '127.0.0.1');
    open.push(extra);
    await closedWithin(extra, 5000);
    // the held ones are cut by the request timeout (Node checks it every few seconds)
    await Promise.all(open.slice(0, 2).map((c) => closedWithin(c, 60_000)));
    assert.equal((await get(s.port, '/metrics')).status, 200, 'serving again once they are gone');
  } finally {
    for (const c of open) c.destroy();
    await s.close();
  }
});

test('a port in use is an error at start, not a silent endpoint elsewhere', async () => {
  const a = await startMetricsServer({ host: '127.0.0.1', port: 0 }, source);
  try {
    await assert.rejects(startMetricsServer({ host: '127.0.0.1', port: a.port }, source), /EADDRINUSE/);
  } finally {
    await a.close();
  }
});
