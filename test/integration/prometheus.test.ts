// The metrics endpoints as Prometheus sees them: Debian's prometheus scrapes a
// real control server, a real relay and a real daemon every second, and its
// HTTP API is asked until a series of each component has arrived. All of it
// runs in namespaces this test makes (MeshLab): the control server, the relay
// and Prometheus in one (their endpoints on its loopback), the daemon in a
// node namespace on the LAN (its endpoint on its LAN address, which needs
// --metrics-allow-remote). The lab's cleanup kills every process in those
// namespaces, Prometheus included, and removes the temp dir with its TSDB,
// whether the test passed or not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootSkipReason } from '../helpers/root.js';
import { eventually, MeshLab, type MeshNode } from '../helpers/mesh.js';
import { sh } from '../helpers/netns.js';
import { parseExposition, seriesKey } from '../helpers/prom-text.js';

const skip = rootSkipReason('prometheus', 'ping');
/** fixed ports are free: the namespace is this test's own */
const CONTROL_METRICS = '127.0.0.1:9101';
const RELAY_METRICS = '127.0.0.1:9102';
const PROMETHEUS = '127.0.0.1:9090';
const RELAY_PORT = 8444;

/** One instant query through Prometheus's HTTP API, asked from inside `ns` (where it listens); the result's samples. */
async function query(ns: string, promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const url = `http://${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(promql)}`;
  const script = `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { process.stderr.write(String(e)); process.exit(1); })`;
  const r = await sh('ip', ['netns', 'exec', ns, process.execPath, '-e', script], 10_000);
  if (r.code !== 0) return [];
  const body = JSON.parse(r.stdout) as { status: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  assert.equal(body.status, 'success', r.stdout);
  return body.data?.result ?? [];
}

test('Prometheus scrapes the control server, a relay and a daemon', { skip, timeout: 180_000 }, async () => {
  const m = new MeshLab();
  try {
    await m.build(2);
    const [n, peer] = m.nodes as [MeshNode, MeshNode];
    const daemonMetrics = `${n.lanIp}:9103`;
    const relay = m.spawnRelay('test', ['--metrics-listen', RELAY_METRICS]);
    let relayLog = '';
    relay.stderr!.on('data', (c: Buffer) => (relayLog += c.toString()));
    await eventually(
      'the relay serves metrics',
      async () => /metrics on http:\/\/127\.0\.0\.1:9102\/metrics/.test(relayLog) || relay.exitCode !== null,
      10_000,
    );
    assert.equal(relay.exitCode, null, `the relay exited: ${relayLog}`);
    await m.startControl(['--relay', `test=https://${m.controlIp}:${RELAY_PORT}`, '--metrics-listen', CONTROL_METRICS]);

    const key = await m.authKey(['--reusable']);
    const up = await m.up(n, ['--auth-key', key, '--metrics-listen', daemonMetrics, '--metrics-allow-remote']);
    assert.equal(up.code, 0, `up: ${up.stderr}`);
    const upPeer = await m.up(peer, ['--auth-key', key]);
    assert.equal(upPeer.code, 0, `up ${peer.name}: ${upPeer.stderr}`);
    // traffic to the peer: a handshake, and a direct path on the shared LAN
    const peerIp = JSON.parse((await peer.run(['status', '--json'])).stdout).self.ips[0] as string;
    await eventually(
      'the peer answers ping over the mesh',
      async () => (await sh('ip', ['netns', 'exec', n.ns, 'ping', '-c', '1', '-W', '1', peerIp], 5000)).code === 0,
      30_000,
      250,
    );

    // `meshctl metrics` prints what the endpoint serves
    const cli = await n.run(['metrics']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(parseExposition(cli.stdout).samples.get(seriesKey('meshctl_daemon_backend_state', { state: 'Running' })), 1);

    const promDir = join(m.dir, 'prometheus');
    mkdirSync(join(promDir, 'data'), { recursive: true });
    const config = join(promDir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        `  - job_name: meshctl-control\n    static_configs:\n      - targets: ['${CONTROL_METRICS}']`,
        `  - job_name: meshctl-relay\n    static_configs:\n      - targets: ['${RELAY_METRICS}']`,
        `  - job_name: meshctl-daemon\n    static_configs:\n      - targets: ['${daemonMetrics}']`,
        '',
      ].join('\n'),
    );
    const prom = m.lab.spawn(m.controlNs, [
      'prometheus',
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(promDir, 'data')}`,
      `--web.listen-address=${PROMETHEUS}`,
    ]);
    let promLog = '';
    prom.stderr!.on('data', (c: Buffer) => (promLog = (promLog + c.toString()).slice(-8000)));

    const value = async (promql: string): Promise<number | null> => {
      assert.equal(prom.exitCode, null, `prometheus exited: ${promLog}`);
      const r = await query(m.controlNs, promql);
      return r.length ? Number(r[0]!.value[1]) : null;
    };
    // every target up, then one series of each component with the value the situation gives
    await eventually('all three targets up', async () => (await value('count(up == 1)')) === 3, 60_000, 500);
    await eventually('the control server has both nodes registered', async () => (await value('meshctl_control_nodes_registered')) === 2, 30_000, 500);
    await eventually('the control server has their map streams', async () => (await value('meshctl_control_map_streams')) === 2, 30_000, 500);
    await eventually('the daemon is connected to control', async () => (await value('meshctl_daemon_control_connected')) === 1, 30_000, 500);
    await eventually('the relay has both nodes as clients', async () => (await value('meshctl_relay_clients')) === 2, 30_000, 500);
    await eventually('the daemon reaches its peer directly', async () => (await value('meshctl_daemon_peers{path="direct"}')) === 1, 30_000, 500);
    await eventually('the daemon counts the handshake', async () => ((await value('meshctl_daemon_handshakes_completed_total')) ?? 0) >= 1, 30_000, 500);
    await eventually('the daemon counts its traffic', async () => ((await value('meshctl_daemon_sent_bytes_total')) ?? 0) > 0, 30_000, 500);
    await eventually(
      'the daemon counts its relay connection',
      async () => (await value('meshctl_daemon_relay_connections{state="connected"}')) === 1,
      30_000,
      500,
    );
    assert.ok(((await value('meshctl_control_registrations_total')) ?? 0) >= 1);
    assert.ok(((await value('sum(meshctl_control_request_duration_seconds_count{route="register"})')) ?? 0) >= 1);
  } finally {
    await m.cleanup();
  }
});
