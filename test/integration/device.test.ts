// A phone on stock WireGuard reaches the mesh through a gateway node: a control
// server, a gateway (node1) and a second node (node2) on one LAN, and a "phone"
// namespace on a link of its own to the gateway, running Debian's wireguard-go
// configured from the wg-quick config `control device add` printed and nothing
// else (the wg-quick-only keys become `ip` commands, the rest goes to
// `wg setconf`, the AllowedIPs become routes, as wg-quick does). The phone and
// node2 ping and connect over TCP both ways through the gateway's kernel, and
// `control device remove` cuts the phone off at the gateway within a second.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceStatus, Status } from '../../src/localapi/types.js';
import { rootSkipReason } from '../helpers/root.js';
import { eventually, MeshLab, type MeshNode } from '../helpers/mesh.js';
import { must, uniqueSuffix, type Lab } from '../helpers/netns.js';
import { packageRoot } from '../../src/cli/version.js';
import { checkXfer, exitWithin } from '../helpers/xfer.js';
import { skipOutsideCI } from '../helpers/ci.js';

const rootSkip = rootSkipReason('wg', 'wireguard-go', 'nft', 'ping');
const WIREGUARD_GO = '/usr/bin/wireguard-go';
const skip = rootSkip || (existsSync(WIREGUARD_GO) ? false : skipOutsideCI('stock WireGuard device test', `needs ${WIREGUARD_GO} (apt install wireguard-go)`));

const GATEWAY_LINK_IP = '10.89.0.1';
const PHONE_LINK_IP = '10.89.0.2';
const MESH_PORT = 41641;
const XFER_BYTES = 2 * 1024 * 1024;
/** removal must take effect at the gateway within a second; the map's trip from control is part of it */
const REMOVAL_DEADLINE_MS = 1500;

interface WgQuickConfig {
  /** [Interface] keys that only wg-quick knows (Address, DNS, MTU), each possibly repeated */
  addresses: string[];
  mtu: number | null;
  /** the config with those keys removed: what `wg setconf` takes */
  setconf: string;
  /** [Peer] AllowedIPs: the routes wg-quick would add */
  allowedIps: string[];
  endpoint: string | null;
  keepalive: number | null;
}

/** Splits a printed wg-quick config (from its [Interface] line on) into what `ip` and what `wg setconf` get. */
function parseWgQuick(text: string): WgQuickConfig {
  const start = text.indexOf('[Interface]');
  assert.ok(start >= 0, `no [Interface] section in: ${text}`);
  const out: WgQuickConfig = { addresses: [], mtu: null, setconf: '', allowedIps: [], endpoint: null, keepalive: null };
  const kept: string[] = [];
  let section = '';
  for (const raw of text.slice(start).split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sec = /^\[(\w+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      kept.push(line);
      continue;
    }
    const kv = /^(\w+)\s*=\s*(.*)$/.exec(line);
    if (!kv) break; // the config ends where its lines end (a QR code or a note may follow)
    const [, key, value] = kv as unknown as [string, string, string];
    const list = value.split(',').map((v) => v.trim());
    if (section === 'Interface' && key === 'Address') out.addresses.push(...list);
    else if (section === 'Interface' && key === 'MTU') out.mtu = Number(value);
    else if (section === 'Interface' && key === 'DNS')
      continue; // names: not needed to reach addresses
    else {
      if (section === 'Peer' && key === 'AllowedIPs') out.allowedIps.push(...list);
      if (section === 'Peer' && key === 'Endpoint') out.endpoint = value;
      if (section === 'Peer' && key === 'PersistentKeepalive') out.keepalive = Number(value);
      kept.push(line);
    }
  }
  out.setconf = `${kept.join('\n')}\n`;
  return out;
}

/** Debian's wireguard-go in `ns`, set up from the config alone; returns its interface name. */
async function startPhone(lab: Lab, ns: string, config: WgQuickConfig): Promise<string> {
  const ifname = `wph${uniqueSuffix()}`;
  const sock = `/var/run/wireguard/${ifname}.sock`;
  assert.ok(!existsSync(sock), `${sock} exists: another process uses the name ${ifname}`);
  const proc = lab.spawn(ns, [WIREGUARD_GO, '-f', ifname], { LOG_LEVEL: 'error' });
  // this test's own socket: removed even if wireguard-go was killed before it could
  lab.onCleanup(() => rmSync(sock, { force: true }));
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdout!.resume();
  await eventually(`wireguard-go creates ${sock} (${err})`, async () => existsSync(sock), 5000, 50);
  const dir = mkdtempSync(join(tmpdir(), 'mcphone-'));
  lab.onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'wg.conf');
  writeFileSync(file, config.setconf, { mode: 0o600 }); // it holds the private key
  await must('ip', ['netns', 'exec', ns, 'wg', 'setconf', ifname, file]);
  for (const a of config.addresses) await must('ip', ['-n', ns, 'addr', 'add', a, 'dev', ifname, ...(a.includes(':') ? ['nodad'] : [])]);
  await must('ip', ['-n', ns, 'link', 'set', ifname, ...(config.mtu ? ['mtu', String(config.mtu)] : []), 'up']);
  for (const p of config.allowedIps) await must('ip', ['-n', ns, 'route', 'replace', p, 'dev', ifname]);
  return ifname;
}

async function status(n: MeshNode): Promise<Status> {
  const r = await n.run(['status', '--json']);
  assert.equal(r.code, 0, `status --json on ${n.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

async function device(n: MeshNode, name: string): Promise<DeviceStatus | undefined> {
  return (await status(n)).devices?.find((d) => d.name === name);
}

async function pingFrom(lab: Lab, ns: string, ip: string, count = 2, waitSec = 2): Promise<boolean> {
  const r = await lab.exec(ns, ['ping', ...(ip.includes(':') ? ['-6'] : []), '-c', String(count), '-W', String(waitSec), '-i', '0.2', ip], 15_000);
  return r.code === 0;
}

/** Moves XFER_BYTES over TCP from `clientNs` to `host` (listening in `serverNs`), checking both ends. */
async function tcp(lab: Lab, serverNs: string, clientNs: string, host: string): Promise<void> {
  const fixture = join(packageRoot(), 'dist', 'test', 'integration', 'fixtures', 'tcp-xfer.js');
  const server = lab.spawn(serverNs, [process.execPath, fixture, 'server', '5201']);
  let out = '';
  let err = '';
  server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  server.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await eventually(`the TCP server in ${serverNs} listens (${err})`, async () => out.includes('listening'), 10_000, 50);
    const client = await lab.exec(clientNs, [process.execPath, fixture, 'client', host, '5201', String(XFER_BYTES)], 60_000);
    checkXfer(XFER_BYTES, client, { code: await exitWithin(server, 30_000), out, err });
  } finally {
    server.kill('SIGKILL');
  }
}

test('a phone on stock wireguard-go reaches a node through its gateway and back; removal cuts it off', { skip, timeout: 240_000 }, async (t) => {
  const m = new MeshLab();
  try {
    await m.build(2);
    await m.startControl();
    const [gw, n2] = m.nodes as [MeshNode, MeshNode];
    const key = await m.authKey(['--reusable']);
    for (const n of m.nodes) {
      const r = await m.up(n, ['--auth-key', key]);
      assert.equal(r.code, 0, `up ${n.name}: ${r.stderr}`);
    }
    const n2Ips = (await status(n2)).self!.ips;
    const n2v4 = n2Ips.find((a) => !a.includes(':'))!;
    const n2v6 = n2Ips.find((a) => a.includes(':'));
    // the phone is elsewhere: a link of its own to the gateway, which it reaches at a fixed address and port
    const phoneNs = await m.lab.netns('ph');
    await m.lab.link(gw.ns, `${GATEWAY_LINK_IP}/24`, phoneNs, `${PHONE_LINK_IP}/24`);

    const added = await m.meshctl([
      'control',
      'device',
      'add',
      'phone',
      '--via',
      gw.name,
      '--endpoint',
      `${GATEWAY_LINK_IP}:${MESH_PORT}`,
      '--state-dir',
      m.controlDir,
    ]);
    assert.equal(added.code, 0, `control device add: ${added.stderr}`);
    const config = parseWgQuick(added.stdout);
    assert.equal(config.endpoint, `${GATEWAY_LINK_IP}:${MESH_PORT}`, 'the Endpoint is the one asked for');
    assert.equal(config.keepalive, 25);
    const phoneV4 = config.addresses.find((a) => !a.includes(':'))!.split('/')[0]!;
    const phoneV6 = config.addresses.find((a) => a.includes(':'))?.split('/')[0];

    await t.test('the gateway holds the device and says its forwarding is off; other nodes list it with its gateway', async () => {
      const d = await eventually('node1 lists the phone as its device', async () => (await device(gw, 'phone')) ?? null, 5000);
      assert.equal(d.viaSelf, true);
      assert.equal(d.endpoint, null, 'no endpoint before its first handshake');
      assert.deepEqual(d.ips[0], phoneV4);
      await eventually(
        'the forwarding-off health line',
        async () => (await status(gw)).health.some((h) => /^IPv4 forwarding is off: the 1 device behind this gateway/.test(h)),
        2000,
      );
      const other = await eventually('node2 lists the phone', async () => (await device(n2, 'phone')) ?? null, 5000);
      assert.equal(other.gateway, gw.name);
      assert.equal(other.viaSelf, false);
      const text = await n2.run(['status']);
      assert.match(text.stdout, new RegExp(`${phoneV4.replace(/\./g, '\\.')}\\s+phone\\s+wireguard\\s+device via node1`));
    });

    await must('ip', ['netns', 'exec', gw.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    const ifname = await startPhone(m.lab, phoneNs, config);

    await t.test('the phone pings node2 through the gateway and node2 pings it back, IPv4 and IPv6', async () => {
      await eventually('phone → node2', () => pingFrom(m.lab, phoneNs, n2v4, 1, 1), 15_000, 200);
      assert.ok(await pingFrom(m.lab, n2.ns, phoneV4), 'node2 → phone');
      assert.ok(n2v6 && phoneV6, `IPv6 addresses: node2 ${n2v6}, phone ${phoneV6}`);
      assert.ok(await pingFrom(m.lab, phoneNs, n2v6), 'phone → node2 over IPv6');
      assert.ok(await pingFrom(m.lab, n2.ns, phoneV6), 'node2 → phone over IPv6');
      assert.equal((await status(gw)).health.filter((h) => /forwarding is off/.test(h)).length, 0, 'forwarding is on now');
    });

    await t.test('TCP both ways', async () => {
      await tcp(m.lab, n2.ns, phoneNs, n2v4);
      await tcp(m.lab, phoneNs, n2.ns, phoneV4);
    });

    await t.test('the gateway shows where the phone is, its handshake and its traffic', async () => {
      const wgPort = (await must('ip', ['netns', 'exec', phoneNs, 'wg', 'show', ifname, 'listen-port'])).trim();
      const d = (await device(gw, 'phone'))!;
      assert.equal(d.endpoint, `${PHONE_LINK_IP}:${wgPort}`, 'learned from its handshake');
      assert.match(d.lastHandshake ?? '', /^\d{4}-\d\d-\d\dT/);
      assert.ok(d.rxBytes > XFER_BYTES && d.txBytes > XFER_BYTES, JSON.stringify(d));
      const text = await gw.run(['status']);
      assert.match(text.stdout, new RegExp(`phone\\s+wireguard\\s+device via this node; ${PHONE_LINK_IP.replace(/\./g, '\\.')}:${wgPort} handshake`));
    });

    await t.test('control device remove: within a second the gateway holds no peer for it and its traffic stops', async () => {
      const r = await m.meshctl(['control', 'device', 'remove', 'phone', '--state-dir', m.controlDir]);
      assert.equal(r.code, 0, `control device remove: ${r.stderr}`);
      const removedAt = Date.now();
      await eventually('the gateway drops the phone', async () => (await device(gw, 'phone')) === undefined, REMOVAL_DEADLINE_MS, 50);
      const tookMs = Date.now() - removedAt;
      // the gateway itself refuses the phone's packets (its session keys are gone), not only node2 their source
      const unknownIndex = async () => ((await status(gw)).counters as { engine: { dropped: { unknownIndex: number } } }).engine.dropped.unknownIndex;
      const before = await unknownIndex();
      assert.equal(await pingFrom(m.lab, phoneNs, n2v4, 2, 1), false, 'the phone reaches nothing');
      assert.ok((await unknownIndex()) >= before + 2, 'the gateway no longer knows the phone’s session');
      assert.equal(await pingFrom(m.lab, n2.ns, phoneV4, 2, 1), false, 'nothing reaches the phone');
      t.diagnostic(`removal took effect at the gateway within ${tookMs} ms`);
    });
  } finally {
    await m.cleanup();
  }
});
