// The control server's metrics (src/control/metrics.ts) against a real server
// on loopback: node counts, map streams and pushes, request latencies by a
// bounded route label, registrations and auth failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { controlMetrics } from '../../src/control/metrics.js';
import { PATHS } from '../../src/control/protocol.js';
import { harness, Node, openStream, registerBody, until, type OpenStream } from './helpers.js';
import { parseExposition, seriesKey } from '../helpers/prom-text.js';

test('control metrics: nodes, streams, pushes, requests by route, registrations and auth failures', async () => {
  let server: { metricsView(): ReturnType<import('../../src/control/server.js').ControlServer['metricsView']> } | null = null;
  const m = controlMetrics(() => server?.metricsView() ?? null);
  const h = await harness({ requestObserver: m.observer });
  server = h.server;
  let stream: OpenStream | undefined;
  const scrape = async () => parseExposition(await m.metrics());
  try {
    const authKey = await h.authKey();
    const a = new Node(h.server.publicKey!);
    const b = new Node(h.server.publicKey!);
    assert.equal((await h.post(PATHS.register, a.seal('register', registerBody(authKey, 'a')))).status, 200);
    assert.equal((await h.post(PATHS.register, b.seal('register', registerBody(authKey, 'b')))).status, 200);
    const refused = await h.post(PATHS.register, new Node(h.server.publicKey!).seal('register', registerBody(`mskey-000000000000-${'0'.repeat(48)}`, 'c')));
    assert.equal(refused.status, 401);
    const garbled = await h.post(PATHS.register, { nodeKey: a.key, box: Buffer.alloc(80).toString('base64') });
    assert.equal(garbled.status, 401);
    assert.equal((await h.get(PATHS.key)).status, 200);
    // a path of the attacker's choosing is counted as `other`, never as a label of its own
    assert.equal((await h.get('/x/../meshctl/v1/ke%79?a=b')).status, 400);
    stream = await openStream(h, a);
    await until(() => stream!.lines().length > 0, 5000, 'first map');

    const e = await scrape();
    const at = (name: string, labels?: Record<string, string>): number | undefined => e.samples.get(seriesKey(name, labels));
    assert.equal(at('meshctl_control_nodes_registered'), 2);
    assert.equal(at('meshctl_control_nodes_online'), 1);
    assert.equal(at('meshctl_control_map_streams'), 1);
    assert.ok((at('meshctl_control_map_pushes_total') ?? 0) >= 1);
    assert.ok((at('meshctl_control_map_push_bytes_total') ?? 0) > 100);
    assert.equal(at('meshctl_control_registrations_total'), 2);
    assert.equal(at('meshctl_control_auth_failures_total', { reason: 'authkey_invalid' }), 1);
    assert.equal(at('meshctl_control_auth_failures_total', { reason: 'bad_signature' }), 1);
    assert.equal(at('meshctl_control_requests_total', { route: 'register', code: '200' }), 2);
    assert.equal(at('meshctl_control_requests_total', { route: 'register', code: '401' }), 2);
    assert.equal(at('meshctl_control_requests_total', { route: 'key', code: '200' }), 1);
    assert.equal(at('meshctl_control_requests_total', { route: 'other', code: '400' }), 1);
    assert.equal(at('meshctl_control_request_duration_seconds_count', { route: 'register' }), 4);
    assert.equal(at('meshctl_control_request_duration_seconds_bucket', { route: 'register', le: '+Inf' }), 4);
    assert.equal(at('meshctl_control_request_duration_seconds_count', { route: 'map' }), 1);
    const routes = new Set([...e.samples.keys()].map((k) => /route="([^"]*)"/.exec(k)?.[1]).filter(Boolean));
    for (const r of routes) assert.ok(['key', 'healthz', 'verify', 'register', 'map', 'endpoints', 'advertise', 'logout', 'other'].includes(r!), r);
    for (const [name, type] of e.types) {
      assert.match(name, /^meshctl_control_/);
      if (type === 'counter') assert.match(name, /_total$/);
    }

    // the stream closes: the gauges follow at the next scrape
    stream.req.destroy();
    await until(() => h.server.metricsView().streams.streams.length === 0, 5000, 'stream gone');
    const e2 = await scrape();
    assert.equal(e2.samples.get(seriesKey('meshctl_control_map_streams')), 0);
  } finally {
    stream?.req.destroy();
    await h.close();
  }
});
