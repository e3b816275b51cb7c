// The daemon's metrics (src/daemon/metrics.ts): the exposition parses and has
// the series docs/metrics.md lists, read from the backend's view at each
// scrape; `meshctl metrics` prints the same text through the local API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemonMetrics, type DaemonMetricsView } from '../../src/daemon/metrics.js';
import { LocalApiServer } from '../../src/daemon/localapi-server.js';
import { newStats } from '../../src/engine/device/stats.js';
import { LocalClient } from '../../src/localapi/client.js';
import { LOCALAPI, type MetricsResponse } from '../../src/localapi/types.js';
import { BackendDouble, meshctlCli, socketDir } from './localapi-helpers.js';
import { parseExposition, seriesKey } from '../helpers/prom-text.js';

function view(): DaemonMetricsView {
  const engine = newStats();
  engine.tx = { packets: 10, bytes: 1480 };
  engine.rx = { packets: 12, bytes: 1700 };
  engine.sessions = 3;
  engine.handshakes = { initiated: 4, failed: 1, resentOnPath: 0 };
  engine.dropped.noRoute = 2;
  engine.dropped.filteredIn = 5;
  return {
    backendState: 'Running',
    wantRunning: true,
    controlConnected: true,
    peerPaths: ['direct', 'relay', 'relay', 'none'],
    // only the parts the metrics read; the rest of EngineHost.counters() is not looked at
    engine: {
      engine,
      sends: { direct: 6, directGuess: 1, relay: 3, noPath: 2 },
      traffic: {
        directSentPackets: 7,
        directSentBytes: 700,
        relaySentPackets: 3,
        relaySentBytes: 330,
        directReceivedPackets: 8,
        directReceivedBytes: 800,
        relayReceivedPackets: 4,
        relayReceivedBytes: 440,
      },
    } as unknown as DaemonMetricsView['engine'],
    relays: [
      { region: 'a', url: 'https://a', connected: true, latencyMs: 1, lastError: null },
      { region: 'b', url: 'https://b', connected: false, latencyMs: null, lastError: 'refused' },
    ],
    relayFrames: { sent: 3, received: 4, dropped: 1 },
    acl: { droppedNoRule: 4, droppedNotAReply: 1, droppedFragment: 0, droppedMalformed: 0, flowsRevoked: 0, flowsEvicted: 0, flows: 1, maxFlows: 10, rules: 2 },
    droppedDestination: 1,
    dns: {
      queries: 9,
      answered: 5,
      nxdomain: 2,
      nodata: 0,
      forwarded: 1,
      servfail: 0,
      refused: 0,
      dropped: 1,
      rateLimited: 0,
      formerr: 0,
      notimp: 0,
      truncated: 0,
      tcpOpen: 0,
      tcpRejected: 0,
      forwardsInFlight: 0,
    },
  };
}

test('the daemon exposition parses and carries each figure, read from the view at each scrape', async () => {
  let v = view();
  let reads = 0;
  const m = daemonMetrics(() => (reads++, v));
  const r0 = reads;
  const e = parseExposition(await m.metrics());
  assert.equal(reads - r0, 1, 'one view per scrape');
  const at = (name: string, labels?: Record<string, string>): number | undefined => e.samples.get(seriesKey(name, labels));
  assert.equal(at('meshctl_daemon_peers', { path: 'direct' }), 1);
  assert.equal(at('meshctl_daemon_peers', { path: 'relay' }), 2);
  assert.equal(at('meshctl_daemon_peers', { path: 'none' }), 1);
  assert.equal(at('meshctl_daemon_backend_state', { state: 'Running' }), 1);
  assert.equal(at('meshctl_daemon_backend_state', { state: 'Stopped' }), 0);
  assert.equal(at('meshctl_daemon_control_connected'), 1);
  assert.equal(at('meshctl_daemon_relay_connections', { state: 'connected' }), 1);
  assert.equal(at('meshctl_daemon_relay_connections', { state: 'disconnected' }), 1);
  assert.equal(at('meshctl_daemon_sent_packets_total'), 10);
  assert.equal(at('meshctl_daemon_sent_bytes_total'), 1480);
  assert.equal(at('meshctl_daemon_received_packets_total'), 12);
  assert.equal(at('meshctl_daemon_received_bytes_total'), 1700);
  assert.equal(at('meshctl_daemon_handshakes_initiated_total'), 4);
  assert.equal(at('meshctl_daemon_handshakes_completed_total'), 3);
  assert.equal(at('meshctl_daemon_handshakes_failed_total'), 1);
  assert.equal(at('meshctl_daemon_path_sent_packets_total', { path: 'direct' }), 7);
  assert.equal(at('meshctl_daemon_path_sent_packets_total', { path: 'relay' }), 3);
  assert.equal(at('meshctl_daemon_path_sent_packets_total', { path: 'none' }), 2);
  assert.equal(at('meshctl_daemon_relay_packets_total', { direction: 'received' }), 4);
  assert.equal(at('meshctl_daemon_path_packets_total', { path: 'direct', direction: 'sent' }), 7);
  assert.equal(at('meshctl_daemon_path_packets_total', { path: 'relay', direction: 'sent' }), 3);
  assert.equal(at('meshctl_daemon_path_packets_total', { path: 'direct', direction: 'received' }), 8);
  assert.equal(at('meshctl_daemon_path_packets_total', { path: 'relay', direction: 'received' }), 4);
  assert.equal(at('meshctl_daemon_path_bytes_total', { path: 'direct', direction: 'sent' }), 700);
  assert.equal(at('meshctl_daemon_path_bytes_total', { path: 'relay', direction: 'sent' }), 330);
  assert.equal(at('meshctl_daemon_path_bytes_total', { path: 'direct', direction: 'received' }), 800);
  assert.equal(at('meshctl_daemon_path_bytes_total', { path: 'relay', direction: 'received' }), 440);
  assert.equal(at('meshctl_daemon_dropped_packets_total', { reason: 'no_route' }), 2);
  assert.equal(at('meshctl_daemon_dropped_packets_total', { reason: 'filtered_in' }), 5);
  assert.equal(at('meshctl_daemon_dropped_packets_total', { reason: 'bad_mac1' }), 0);
  assert.equal(at('meshctl_daemon_filter_dropped_packets_total', { reason: 'no_rule' }), 4);
  assert.equal(at('meshctl_daemon_filter_dropped_packets_total', { reason: 'destination' }), 1);
  assert.equal(at('meshctl_daemon_dns_queries_total', { result: 'answered' }), 5);
  assert.equal(at('meshctl_daemon_dns_queries_total', { result: 'nxdomain' }), 2);
  for (const [name, type] of e.types) {
    assert.match(name, /^meshctl_daemon_/);
    if (type === 'counter') assert.match(name, /_total$/, `${name}: counters end in _total`);
  }
  // no per-peer label anywhere: keys, IPs and names stay out of the series
  for (const key of e.samples.keys()) assert.doesNotMatch(key, /\b(node_?key|endpoint|ip|peer|name|region)=/i, key);

  // the next scrape reads the state as it is then
  v = { ...view(), peerPaths: [], controlConnected: false, engine: null, dns: null };
  const e2 = parseExposition(await m.metrics());
  assert.equal(e2.samples.get(seriesKey('meshctl_daemon_peers', { path: 'relay' })), 0);
  assert.equal(e2.samples.get(seriesKey('meshctl_daemon_control_connected')), 0);
  assert.equal(e2.samples.get(seriesKey('meshctl_daemon_dropped_packets_total', { reason: 'no_route' })), undefined, 'no engine: no engine series');
});

test('two daemons in one process keep separate registries (never the global one)', async () => {
  const a = daemonMetrics(view);
  const b = daemonMetrics(() => ({ ...view(), peerPaths: [] }));
  const ea = parseExposition(await a.metrics());
  const eb = parseExposition(await b.metrics());
  assert.equal(ea.samples.get(seriesKey('meshctl_daemon_peers', { path: 'relay' })), 2);
  assert.equal(eb.samples.get(seriesKey('meshctl_daemon_peers', { path: 'relay' })), 0);
  const { register } = await import('prom-client');
  assert.equal(register.getMetricsAsArray().length, 0);
});

test('the local API serves the exposition to anyone who may read status, and `meshctl metrics` prints it', async () => {
  const backend = new BackendDouble();
  const { sock, done } = socketDir();
  const cfg = mkdtempSync(join(tmpdir(), 'meshctl-cfg-'));
  const api = new LocalApiServer(sock, backend, { logger: () => {} });
  await api.start();
  try {
    const r = await new LocalClient(sock).get<MetricsResponse>(LOCALAPI.metrics);
    assert.match(r.contentType, /^text\/plain; version=0\.0\.4/);
    const e = parseExposition(r.text);
    assert.equal(e.samples.get(seriesKey('meshctl_daemon_peers', { path: 'direct' })), 2);
    assert.equal(e.samples.get(seriesKey('meshctl_daemon_relay_connections', { state: 'connected' })), 1);

    const cli = await meshctlCli(['--socket', sock, 'metrics'], cfg);
    assert.equal(cli.code, 0, cli.err);
    const ec = parseExposition(cli.out);
    assert.equal(ec.samples.get(seriesKey('meshctl_daemon_peers', { path: 'relay' })), 1);
    assert.equal(ec.samples.get(seriesKey('meshctl_daemon_control_connected')), 1);
    assert.equal(backend.calls.filter((c) => c === 'metrics').length, 2, 'each request reads the backend afresh');
  } finally {
    await api.stop();
    done();
    rmSync(cfg, { recursive: true, force: true });
  }
});

test('`meshctl metrics` without a daemon fails with the usual one-line cause', async () => {
  const { sock, done } = socketDir();
  const cfg = mkdtempSync(join(tmpdir(), 'meshctl-cfg-'));
  try {
    const cli = await meshctlCli(['--socket', sock, 'metrics'], cfg);
    assert.notEqual(cli.code, 0);
    assert.equal(cli.out, '');
    assert.equal(cli.err.trim().split('\n').length, 1, cli.err);
  } finally {
    done();
    rmSync(cfg, { recursive: true, force: true });
  }
});

test('`up --metrics-listen` to a daemon already running says the flag applies when the daemon starts, and still brings it up', async () => {
  const backend = new BackendDouble();
  const { sock, dir, done } = socketDir();
  const cfg = mkdtempSync(join(tmpdir(), 'meshctl-cfg-'));
  const api = new LocalApiServer(sock, backend, { logger: () => {} });
  await api.start();
  try {
    const cli = await meshctlCli(['--socket', sock, 'up', '--state-dir', join(dir, 'state'), '--metrics-listen', '127.0.0.1:0'], cfg);
    assert.equal(cli.code, 0, cli.err);
    assert.match(cli.err, /already running: --metrics-listen applies when it starts/);
    assert.equal(backend.calls.filter((c) => c.startsWith('up ')).length, 1);
  } finally {
    await api.stop();
    done();
    rmSync(cfg, { recursive: true, force: true });
  }
});
