// Devices on stock WireGuard at the control server, over real HTTPS and the
// admin socket on loopback: add (addresses from the allocator, only the public
// key kept, the endpoint chosen or refused), what every map carries (the key
// only in the gateway's), the shared name namespace, removal reaching maps,
// and the wg-quick config parsed back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin } from '../../src/control/admin-client.js';
import { wgQuickConfig } from '../../src/control/devices.js';
import { ControlError } from '../../src/control/protocol.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { MESH_MTU } from '../../src/netmap/types.js';
import { harness, latestMap, Node, openStream, registerBody, until, type Harness, type OpenStream } from './helpers.js';

const P = '/meshctl/v1';

const latest = latestMap;

async function join(h: Harness, name: string): Promise<Node> {
  const n = new Node(h.server.publicKey!);
  const r = await h.post(`${P}/register`, n.seal('register', registerBody(await h.authKey(), name)));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return n;
}

/** A wg-quick config as sections of key = value lines. */
function parseWgQuick(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section = '';
  for (const line of text.split('\n')) {
    const m = /^\[(\w+)\]$/.exec(line);
    if (m) out[(section = m[1]!)] = {};
    else if (line.trim()) {
      const eq = line.indexOf(' = ');
      assert.ok(section && eq > 0, `line outside a section or without " = ": ${line}`);
      out[section]![line.slice(0, eq)] = line.slice(eq + 3);
    }
  }
  return out;
}

const newKey = (): { priv: string; pub: string } => {
  const p = generatePrivateKey();
  return { priv: keyToText(p), pub: keyToText(publicKeyOf(p)) };
};

test('device add: addresses, config, maps (key only in the gateway map, addresses in its allowedIps), remove reaches maps', async () => {
  const h = await harness({ dnsSuffix: 'home.example' });
  const streams: OpenStream[] = [];
  try {
    const gw = await join(h, 'gw');
    const other = await join(h, 'laptop');
    const sg = await openStream(h, gw);
    const so = await openStream(h, other);
    streams.push(sg, so);
    await until(() => latest(so)?.peers.some((p) => p.name === 'gw') === true, 5000, 'first maps');
    // the gateway's endpoints as its daemon reports them: a LAN one and a public one
    const eps = await h.post(`${P}/endpoints`, gw.seal('endpoints', { endpoints: ['192.168.1.2:41641', '203.0.113.5:41641'] }));
    assert.equal(eps.status, 200);

    const k = newKey();
    const info = await admin.addDevice(h.dir, 'phone', 'gw', k.pub);
    assert.equal(info.endpoint, '203.0.113.5:41641', 'the public endpoint, not the LAN one');
    assert.match(info.endpointSource, /public endpoint gateway gw reports/);
    assert.equal(info.device.gateway, 'gw');
    const [v4, v6] = info.device.addresses as [string, string];
    assert.match(v4, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./);

    const conf = parseWgQuick(wgQuickConfig(k.priv, info));
    assert.deepEqual(conf.Interface, {
      PrivateKey: k.priv,
      Address: `${v4}/32, ${v6}/128`,
      DNS: `100.100.100.100, ${latest(sg)!.dns!.resolvers[1]}, home.example`,
      MTU: String(MESH_MTU),
    });
    assert.equal(conf.Peer!.PublicKey, latest(sg)!.self.nodeKey);
    assert.equal(conf.Peer!.AllowedIPs, `100.64.0.0/10, ${latest(sg)!.ipv6Prefix}`);
    assert.equal(conf.Peer!.Endpoint, '203.0.113.5:41641');
    assert.equal(conf.Peer!.PersistentKeepalive, '25');

    // the gateway's map: the device with its key; the other node's: without, and the gateway's allowedIps carry it
    await until(() => latest(sg)?.devices?.length === 1 && latest(so)?.devices?.length === 1, 2000, 'device in maps');
    assert.deepEqual(latest(sg)!.devices![0], { id: info.device.id, name: 'phone', addresses: [v4, v6], gateway: 'gw', publicKey: k.pub });
    assert.equal(latest(so)!.devices![0]!.publicKey, undefined);
    const gwView = latest(so)!.peers.find((p) => p.name === 'gw')!;
    assert.ok(gwView.allowedIps.includes(`${v4}/32`) && gwView.allowedIps.includes(`${v6}/128`));
    // the private key is nowhere at control
    assert.ok(!JSON.stringify(await admin.listDevices(h.dir)).includes(k.priv));
    assert.deepEqual(
      (await admin.listDevices(h.dir)).map((d) => [d.name, d.gateway, d.publicKey]),
      [['phone', 'gw', k.pub]],
    );

    // an approved primary route is in the device's AllowedIPs
    const router = await join(h, 'router');
    assert.equal((await h.post(`${P}/advertise`, router.seal('advertise', { routes: ['192.168.50.0/24'], exitNode: false }))).status, 200);
    await admin.approveRoute(h.dir, 'router', '192.168.50.0/24');
    const info2 = await admin.addDevice(h.dir, 'tablet', 'gw', newKey().pub, 'home.example.org:51820');
    assert.equal(info2.endpoint, 'home.example.org:51820');
    assert.ok(info2.allowedIps.includes('192.168.50.0/24'), info2.allowedIps.join(', '));

    // one namespace with nodes; bounded, checked input; one-line errors
    const refused = async (p: Promise<unknown>, re: RegExp): Promise<void> =>
      assert.rejects(p, (e: unknown) => e instanceof ControlError && re.test(e.message) && !e.message.includes('\n'));
    await refused(admin.addDevice(h.dir, 'laptop', 'gw', newKey().pub), /is a node's name/);
    await refused(admin.addDevice(h.dir, 'phone', 'gw', newKey().pub), /a device named phone exists/);
    await refused(admin.addDevice(h.dir, 'Phone_2', 'gw', newKey().pub), /lowercase letters, digits and inner dashes/);
    await refused(admin.addDevice(h.dir, 'p3', 'gw', k.pub), /this public key exists/);
    await refused(admin.addDevice(h.dir, 'p3', 'nobody', newKey().pub), /no gateway node/);
    await refused(admin.addDevice(h.dir, 'p3', 'laptop', newKey().pub), /reports no endpoint with a public address .*pass --endpoint HOST:PORT/);
    await refused(admin.addDevice(h.dir, 'p3', 'gw', newKey().pub, 'gw:0'), /is not HOST:PORT/);
    // a node asking for a device's name gets another one
    await join(h, 'phone');
    assert.ok((await admin.listNodes(h.dir)).some((n) => n.name === 'phone-1'));

    await admin.removeDevice(h.dir, 'phone');
    await until(() => latest(sg)?.devices?.length === 1 && latest(so)?.devices?.length === 1, 2000, 'removed device leaves maps');
    assert.equal(latest(sg)!.devices![0]!.name, 'tablet');
    assert.ok(
      !latest(so)!
        .peers.find((p) => p.name === 'gw')!
        .allowedIps.includes(`${v4}/32`),
    );
    await assert.rejects(admin.removeDevice(h.dir, 'phone'), (e: unknown) => e instanceof ControlError && e.code === 'NOT_FOUND');
  } finally {
    for (const s of streams) s.req.destroy();
    await h.close();
  }
});
