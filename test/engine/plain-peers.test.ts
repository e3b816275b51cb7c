// A gateway's plain WireGuard peers in memory: a "phone" (a device with a
// classic peer config, as the stock app has) reaches a gateway whose device also
// runs path selection for mesh peers, on one UDP port. The gateway learns the
// phone's endpoint from its handshake, follows it when it roams, never lets it
// become a mesh peer's virtual endpoint, and forgets it with its sessions at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Device } from '../../src/engine/device/device.js';
import { FakeClock } from '../../src/engine/clock.js';
import { PathManager } from '../../src/engine/paths/paths.js';
import { PathBind } from '../../src/engine/paths/pathbind.js';
import { PlainPeers } from '../../src/engine/device/plain-peers.js';
import { isVirtualEndpoint, virtualEndpoint } from '../../src/engine/conn/endpoint.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { hostPrefix, parseIp } from '../../src/util/netaddr.js';
import { memDevice, runNet, type MemDevice } from '../helpers/mem-device.js';
import { ipv4Packet, MemNet } from '../helpers/memnet.js';

const GATEWAY_EP = { address: '192.0.2.1', port: 41641 };
const PHONE_IP = '100.64.0.9';
const GATEWAY_IP = '100.64.0.1';

async function gateway(net: MemNet, clock: FakeClock) {
  const key = generatePrivateKey();
  const disco = generatePrivateKey();
  const device = new Device({ clock });
  device.setPrivateKey(key);
  const received: Buffer[] = [];
  device.attachTun((p) => (received.push(Buffer.from(p)), true));
  const bind = net.bind(GATEWAY_EP.address);
  const paths = new PathManager(device, bind, { privateKey: disco, publicKey: publicKeyOf(disco) }, publicKeyOf(key));
  await device.attachBind(new PathBind(bind, paths), GATEWAY_EP.port);
  const logs: string[] = [];
  const plain = new PlainPeers(device, (m) => logs.push(m));
  return { device, paths, plain, received, logs, pub: publicKeyOf(key) };
}

/** The phone's side as wg setconf makes it: the gateway as its one peer with a fixed endpoint, everything routed to it. */
async function phone(net: MemNet, clock: FakeClock, gatewayPub: Buffer, address = '198.51.100.7'): Promise<MemDevice> {
  const p = await memDevice(net, clock, address);
  await p.dev.applySet({
    replacePeers: false,
    peers: [
      {
        publicKey: gatewayPub,
        remove: false,
        updateOnly: false,
        endpoint: GATEWAY_EP,
        replaceAllowedIps: true,
        allowedIps: [{ address: '0.0.0.0', bits: 0, family: 4 }],
      },
    ],
  });
  return p;
}

type Gateway = Awaited<ReturnType<typeof gateway>>;

/** A gateway and a phone that has it as its peer, on one MemNet and FakeClock; everything is closed after `fn`. */
async function withPhone(fn: (net: MemNet, clock: FakeClock, gw: Gateway, ph: MemDevice) => Promise<void>): Promise<void> {
  const net = new MemNet();
  const clock = new FakeClock();
  const gw = await gateway(net, clock);
  const ph = await phone(net, clock, gw.pub);
  try {
    await fn(net, clock, gw, ph);
  } finally {
    gw.paths.stop();
    await gw.device.close();
    await ph.dev.close();
  }
}

const phoneConfig = (pub: Buffer) => ({ publicKey: pub, allowedIps: [hostPrefix(parseIp(PHONE_IP))] });
const noMesh = () => false;

test('a plain peer has no endpoint until its handshake, then follows its packets; the gateway answers it there', async () => {
  await withPhone(async (net, clock, gw, ph) => {
    gw.plain.set([phoneConfig(ph.pub)], noMesh);
    const peer = gw.device.getPeer(ph.pub)!;
    assert.equal(peer.endpoint, null, 'no preset endpoint');

    ph.dev.sendPacket(ipv4Packet(PHONE_IP, GATEWAY_IP, 64));
    runNet(net, clock, 300);
    assert.equal(gw.received.length, 1, 'the phone’s packet reached the gateway’s TUN');
    assert.deepEqual(peer.endpoint, { address: '198.51.100.7', port: ph.port }, 'learned from the handshake');
    assert.ok(peer.lastHandshakeWallMs > 0);

    gw.device.sendPacket(ipv4Packet(GATEWAY_IP, PHONE_IP, 64));
    runNet(net, clock, 300);
    assert.equal(ph.received.length, 1, 'the gateway reached the phone at the learned address');

    // the phone's NAT gives it a new port: the next authenticated packet moves the endpoint
    await ph.dev.applySet({ replacePeers: false, peers: [], listenPort: 51999 });
    ph.dev.sendPacket(ipv4Packet(PHONE_IP, GATEWAY_IP, 64));
    runNet(net, clock, 300);
    assert.equal(gw.received.length, 2);
    assert.deepEqual(peer.endpoint, { address: '198.51.100.7', port: 51999 }, 'roamed');
    gw.device.sendPacket(ipv4Packet(GATEWAY_IP, PHONE_IP, 64));
    runNet(net, clock, 300);
    assert.equal(ph.received.length, 2, 'answered at the new address');
  });
});

test('a source that path selection attributes to a mesh peer does not make the plain peer’s endpoint virtual', async () => {
  await withPhone(async (net, clock, gw, ph) => {
    // a mesh peer claims the address the phone is about to use (a stale or a dishonest candidate)
    const mesh = publicKeyOf(generatePrivateKey());
    gw.device.addPeer(mesh);
    const phoneEp = { address: '198.51.100.7', port: ph.port };
    gw.paths.setPeers([{ nodeKey: mesh, discoKey: publicKeyOf(generatePrivateKey()), candidates: [phoneEp], homeRelay: null }]);
    const isMesh = (k: Buffer) => k.equals(mesh);
    gw.plain.set([phoneConfig(ph.pub)], isMesh);
    assert.deepEqual(gw.device.getPeer(mesh)!.endpoint, virtualEndpoint(mesh));

    ph.dev.sendPacket(ipv4Packet(PHONE_IP, GATEWAY_IP, 64));
    runNet(net, clock, 300);
    assert.equal(gw.received.length, 1);
    const peer = gw.device.getPeer(ph.pub)!;
    assert.ok(peer.endpoint && !isVirtualEndpoint(peer.endpoint), `a real endpoint, not ${JSON.stringify(peer.endpoint)}`);
    assert.deepEqual(peer.endpoint, phoneEp);

    // the mesh node's key is never taken as a plain peer, and the mesh peer stays path selection's
    gw.plain.set([phoneConfig(ph.pub), { publicKey: mesh, allowedIps: [hostPrefix(parseIp('100.64.0.66'))] }], isMesh);
    assert.ok(gw.logs.some((l) => l.includes('a mesh node has that key')));
    assert.deepEqual(gw.device.getPeer(mesh)!.endpoint, virtualEndpoint(mesh));
    assert.equal(gw.device.allowedIps.entriesFor(gw.device.getPeer(mesh)!).length, 0);
  });
});

test('removing a plain peer drops it and its sessions at once; an unknown key gets no handshake', async () => {
  await withPhone(async (net, clock, gw, ph) => {
    const stranger = await phone(net, clock, gw.pub, '203.0.113.5');
    gw.plain.set([phoneConfig(ph.pub)], noMesh);
    ph.dev.sendPacket(ipv4Packet(PHONE_IP, GATEWAY_IP, 64));
    runNet(net, clock, 300);
    assert.equal(gw.received.length, 1);

    gw.plain.set([], noMesh);
    assert.equal(gw.device.getPeer(ph.pub), undefined, 'the peer is gone');
    const unknownIndex = gw.device.stats.dropped.unknownIndex;
    ph.dev.sendPacket(ipv4Packet(PHONE_IP, GATEWAY_IP, 64));
    runNet(net, clock, 300);
    assert.equal(gw.received.length, 1, 'its packets no longer reach the gateway’s TUN');
    assert.ok(gw.device.stats.dropped.unknownIndex > unknownIndex, 'its session keys went with it');
    const noRoute = gw.device.stats.dropped.noRoute;
    gw.device.sendPacket(ipv4Packet(GATEWAY_IP, PHONE_IP, 64));
    assert.equal(gw.device.stats.dropped.noRoute, noRoute + 1, 'nothing routes to its address');

    const refused = gw.device.stats.dropped.handshake;
    stranger.dev.sendPacket(ipv4Packet('100.64.0.77', GATEWAY_IP, 64));
    runNet(net, clock, 300);
    assert.ok(gw.device.stats.dropped.handshake > refused, 'the stranger’s initiation is refused');
    assert.equal(gw.device.getPeer(stranger.pub), undefined);
    assert.equal(gw.received.length, 1);
    await stranger.dev.close();
  });
});
