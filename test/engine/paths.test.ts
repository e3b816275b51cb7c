// Path selection in memory: disco pings find the candidate that answers, the
// WireGuard endpoint follows it, strangers' disco packets are counted and dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Device } from '../../src/engine/device.js';
import { PathManager } from '../../src/engine/paths.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { boxKey } from '../../src/crypto/box.js';
import { sealDisco } from '../../src/nat/disco.js';
import { MemNet } from '../helpers/memnet.js';

async function node(net: MemNet, address: string) {
  const nodeKey = generatePrivateKey();
  const disco = generatePrivateKey();
  const device = new Device();
  device.setPrivateKey(nodeKey);
  await device.attachBind(net.bind(address), 41641);
  const paths = new PathManager(device, { privateKey: disco, publicKey: publicKeyOf(disco) }, publicKeyOf(nodeKey), { heartbeatMs: 60_000 });
  return { device, paths, nodePub: publicKeyOf(nodeKey), discoPub: publicKeyOf(disco), ep: { address, port: 41641 } };
}

test('the candidate that answers becomes the WireGuard endpoint; dead ones are ignored', async () => {
  const net = new MemNet();
  const a = await node(net, '10.0.0.1');
  const b = await node(net, '10.0.0.2');
  try {
    a.device.addPeer(b.nodePub);
    b.device.addPeer(a.nodePub);
    const dead = { address: '10.9.9.9', port: 41641 };
    b.paths.setPeers([{ nodeKey: a.nodePub, discoKey: a.discoPub, candidates: [] }]);
    a.paths.setPeers([{ nodeKey: b.nodePub, discoKey: b.discoPub, candidates: [dead, b.ep] }]);
    assert.deepEqual(a.device.getPeer(b.nodePub)!.endpoint, dead, 'first candidate until a pong says otherwise');
    net.pump();
    assert.deepEqual(a.device.getPeer(b.nodePub)!.endpoint, b.ep);
    const pa = a.paths.pathOf(b.nodePub);
    assert.equal(pa.kind, 'direct');
    assert.equal(pa.trusted, true);
    // b learned a's address from a's ping (b had no candidates for a)
    assert.deepEqual(b.device.getPeer(a.nodePub)!.endpoint, a.ep);

    const pending = a.paths.ping(b.nodePub, 1000);
    net.pump();
    const r = await pending;
    assert.deepEqual(r?.endpoint, b.ep);
    assert.ok(r!.latencyMs >= 0);
    assert.equal(await a.paths.ping(publicKeyOf(generatePrivateKey()), 100), null, 'unknown peer: no probe');
  } finally {
    a.paths.stop();
    b.paths.stop();
    await a.device.close();
    await b.device.close();
  }
});

test('disco from a stranger or with a broken box is counted and dropped', async () => {
  const net = new MemNet();
  const a = await node(net, '10.0.0.1');
  try {
    const stranger = generatePrivateKey();
    const pkt = sealDisco({ type: 'callMeMaybe', endpoints: [] }, publicKeyOf(stranger), boxKey(stranger, a.discoPub));
    a.device.receiveDatagram(pkt, { address: '10.0.0.7', port: 1 });
    assert.equal(a.paths.stats.dropped.unknownSender, 1);
    const friend = generatePrivateKey();
    a.paths.setPeers([{ nodeKey: publicKeyOf(generatePrivateKey()), discoKey: publicKeyOf(friend), candidates: [] }]);
    const good = sealDisco({ type: 'callMeMaybe', endpoints: [] }, publicKeyOf(friend), boxKey(friend, a.discoPub));
    good[good.length - 1]! ^= 0xff;
    a.device.receiveDatagram(good, { address: '10.0.0.7', port: 1 });
    assert.equal(a.paths.stats.dropped.badBox, 1);
    assert.equal(a.device.stats.dropped.internalError, 0);
  } finally {
    a.paths.stop();
    await a.device.close();
  }
});
