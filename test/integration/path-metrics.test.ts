// Traffic by path, end to end: two daemons on one LAN with a relay. Pings over
// the direct path are counted under path="direct"; once UDP between the two is
// dropped (nftables in one node's namespace) the path falls back to the relay
// and pings are counted under path="relay", each way, in `meshctl metrics`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Status } from '../../src/localapi/types.js';
import { rootSkipReason } from '../helpers/root.js';
import { eventually, MeshLab, type MeshNode } from '../helpers/mesh.js';
import { sh } from '../helpers/netns.js';
import { parseExposition, seriesKey } from '../helpers/prom-text.js';

const skip = rootSkipReason('nft', 'ping');
/** a fixed port is free: the namespace is this test's own */
const RELAY_PORT = 8444;
const PINGS = 5;

type Traffic = Record<'directSent' | 'directReceived' | 'relaySent' | 'relayReceived', { packets: number; bytes: number }>;

async function traffic(n: MeshNode): Promise<Traffic> {
  const r = await n.run(['metrics']);
  assert.equal(r.code, 0, r.stderr);
  const e = parseExposition(r.stdout);
  const at = (path: string, direction: string) => ({
    packets: e.samples.get(seriesKey('meshctl_daemon_path_packets_total', { path, direction })) ?? Number.NaN,
    bytes: e.samples.get(seriesKey('meshctl_daemon_path_bytes_total', { path, direction })) ?? Number.NaN,
  });
  return { directSent: at('direct', 'sent'), directReceived: at('direct', 'received'), relaySent: at('relay', 'sent'), relayReceived: at('relay', 'received') };
}

const delta = (a: Traffic, b: Traffic, k: keyof Traffic) => ({ packets: b[k].packets - a[k].packets, bytes: b[k].bytes - a[k].bytes });

async function pathKind(n: MeshNode): Promise<string | undefined> {
  const r = await n.run(['status', '--json']);
  return (JSON.parse(r.stdout) as Status).peers[0]?.path.kind;
}

async function pings(n: MeshNode, ip: string): Promise<void> {
  const r = await sh('ip', ['netns', 'exec', n.ns, 'ping', '-c', String(PINGS), '-i', '0.2', '-W', '2', ip], 15_000);
  assert.equal(r.code, 0, `ping ${ip}: ${r.stdout}${r.stderr}`);
}

test('direct traffic is counted under path="direct", relayed traffic under path="relay", each way', { skip, timeout: 180_000 }, async () => {
  const m = new MeshLab();
  try {
    await m.build(2);
    const [n1, n2] = m.nodes as [MeshNode, MeshNode];
    const relay = m.spawnRelay('test', [
      // its one start-up line says it listens
      '--metrics-listen',
      '127.0.0.1:9102',
    ]);
    let relayLog = '';
    relay.stderr!.on('data', (c: Buffer) => (relayLog += c.toString()));
    await eventually('the relay listens', async () => /metrics on http/.test(relayLog) || relay.exitCode !== null, 10_000);
    assert.equal(relay.exitCode, null, `the relay exited: ${relayLog}`);
    await m.startControl(['--relay', `test=https://${m.controlIp}:${RELAY_PORT}`]);
    const key = await m.authKey(['--reusable']);
    for (const n of [n1, n2]) assert.equal((await m.up(n, ['--auth-key', key])).code, 0, `up ${n.name}`);
    const ip2 = JSON.parse((await n2.run(['status', '--json'])).stdout).self.ips[0] as string;
    await eventually(
      'node2 answers over the mesh',
      async () => (await sh('ip', ['netns', 'exec', n1.ns, 'ping', '-c', '1', '-W', '1', ip2], 5000)).code === 0,
      30_000,
      250,
    );
    await eventually('a direct path', async () => (await pathKind(n1)) === 'direct', 20_000, 250);

    let before = await traffic(n1);
    await pings(n1, ip2);
    let after = await traffic(n1);
    const directSent = delta(before, after, 'directSent');
    const directReceived = delta(before, after, 'directReceived');
    assert.ok(directSent.packets >= PINGS && directReceived.packets >= PINGS, JSON.stringify({ directSent, directReceived }));
    // a ping (84 bytes) sealed: 16 of header, 16 of tag, padded to 16: 128 bytes at least
    assert.ok(directSent.bytes >= PINGS * 128, JSON.stringify(directSent));
    assert.equal(delta(before, after, 'relaySent').packets, 0, 'nothing sent by relay while direct');

    // UDP between the two nodes dropped in node1's namespace: the relay (TLS over TCP) is all that is left
    const nft = (...args: string[]) => sh('ip', ['netns', 'exec', n1.ns, 'nft', ...args]);
    assert.equal((await nft('add', 'table', 'inet', 'meshcut')).code, 0);
    for (const [chain, hook, match] of [
      ['out', 'output', 'daddr'],
      ['in', 'input', 'saddr'],
    ] as const) {
      assert.equal((await nft('add', 'chain', 'inet', 'meshcut', chain, `{ type filter hook ${hook} priority 0; }`)).code, 0);
      assert.equal((await nft('add', 'rule', 'inet', 'meshcut', chain, 'ip', match, n2.lanIp, 'meta', 'l4proto', 'udp', 'drop')).code, 0);
    }
    await eventually('the relay path', async () => (await pathKind(n1)) === 'relay', 30_000, 250);
    await eventually(
      'node2 answers over the relay',
      async () => (await sh('ip', ['netns', 'exec', n1.ns, 'ping', '-c', '1', '-W', '1', ip2], 5000)).code === 0,
      30_000,
      250,
    );

    before = await traffic(n1);
    await pings(n1, ip2);
    after = await traffic(n1);
    const relaySent = delta(before, after, 'relaySent');
    const relayReceived = delta(before, after, 'relayReceived');
    assert.ok(relaySent.packets >= PINGS && relayReceived.packets >= PINGS, JSON.stringify({ relaySent, relayReceived }));
    assert.ok(relaySent.bytes >= PINGS * 128 && relayReceived.bytes >= PINGS * 128, JSON.stringify({ relaySent, relayReceived }));
    assert.equal(delta(before, after, 'directReceived').packets, 0, 'nothing received direct while UDP is dropped');
  } finally {
    await m.cleanup();
  }
});
