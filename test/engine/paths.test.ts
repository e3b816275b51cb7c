// Path selection in memory: disco pings find the candidate that answers, the
// WireGuard endpoint follows it, strangers' disco packets are counted and dropped.
import { PATH_OPENED_ELSEWHERE_MIN_MS } from '../../src/engine/device/constants.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Device } from '../../src/engine/device/device.js';
import { FakeClock } from '../../src/engine/clock.js';
import { PathManager, type PathInfo, type PathTimers, type RelayPaths } from '../../src/engine/paths/paths.js';
import { PathBind } from '../../src/engine/paths/pathbind.js';
import { virtualEndpoint } from '../../src/engine/conn/endpoint.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { boxKey } from '../../src/crypto/box.js';
import { openDisco, sealDisco } from '../../src/nat/disco.js';
import { ipv4Packet, MemNet } from '../helpers/memnet.js';

async function node(net: MemNet, address: string, clock = new FakeClock(), relay?: RelayPaths, timers?: Partial<PathTimers>) {
  const nodeKey = generatePrivateKey();
  const disco = generatePrivateKey();
  const device = new Device({ clock });
  device.setPrivateKey(nodeKey);
  const changes: PathInfo[] = [];
  const bind = net.bind(address);
  const paths = new PathManager(device, bind, { privateKey: disco, publicKey: publicKeyOf(disco) }, publicKeyOf(nodeKey), {
    relay,
    timers,
    onPathChange: (_k, path) => changes.push(path),
  });
  const pathBind = new PathBind(bind, paths);
  await device.attachBind(pathBind, 41641);
  return {
    device,
    paths,
    bind,
    pathBind,
    changes,
    nodePub: publicKeyOf(nodeKey),
    discoPub: publicKeyOf(disco),
    discoPriv: disco,
    ep: { address, port: 41641 },
  };
}

/** a and b as each other's WireGuard peer, a at 10.9.0.1 and b at 10.9.0.2 inside the tunnel */
async function peerEachOther(a: { device: Device; nodePub: Buffer }, b: { device: Device; nodePub: Buffer }): Promise<void> {
  for (const [x, y, ip] of [
    [a, b, '10.9.0.2'],
    [b, a, '10.9.0.1'],
  ] as const) {
    x.device.addPeer(y.nodePub);
    await x.device.applySet({
      replacePeers: false,
      peers: [{ publicKey: y.nodePub, remove: false, updateOnly: true, replaceAllowedIps: true, allowedIps: [{ address: ip, bits: 32, family: 4 }] }],
    });
  }
}

test('the candidate that answers becomes the WireGuard endpoint; dead ones are ignored', async () => {
  const net = new MemNet();
  const a = await node(net, '10.0.0.1');
  const b = await node(net, '10.0.0.2');
  try {
    a.device.addPeer(b.nodePub);
    b.device.addPeer(a.nodePub);
    const dead = { address: '10.9.9.9', port: 41641 };
    b.paths.setPeers([{ nodeKey: a.nodePub, discoKey: a.discoPub, candidates: [], homeRelay: null }]);
    a.paths.setPeers([{ nodeKey: b.nodePub, discoKey: b.discoPub, candidates: [dead, b.ep], homeRelay: null }]);
    assert.deepEqual(a.device.getPeer(b.nodePub)!.endpoint, virtualEndpoint(b.nodePub), 'path selection owns the WireGuard endpoint');
    assert.deepEqual(a.paths.pathOf(b.nodePub), { kind: 'none' }, 'no path until a pong proves one');
    net.pump();
    const pa = a.paths.pathOf(b.nodePub);
    assert.equal(pa.kind === 'direct' && pa.trusted, true);
    assert.deepEqual(pa.kind === 'direct' && pa.endpoint, b.ep);
    // b learned a's address from a's ping (b had no candidates for a)
    const pb = b.paths.pathOf(a.nodePub);
    assert.deepEqual(pb.kind === 'direct' && pb.endpoint, a.ep);
    // WireGuard traffic from b's address is attributed to b's virtual endpoint
    assert.deepEqual(a.paths.translate(b.ep), { ...virtualEndpoint(b.nodePub), direct: b.ep }, 'naming the address it came from');

    const pending = a.paths.ping(b.nodePub, 1000);
    net.pump();
    const r = await pending;
    assert.equal(r?.kind, 'direct');
    assert.deepEqual(r.kind === 'direct' && r.endpoint, b.ep);
    assert.ok(r!.latencyMs >= 0);
    assert.equal(await a.paths.ping(publicKeyOf(generatePrivateKey()), 100), null, 'unknown peer: no probe');
  } finally {
    a.paths.stop();
    b.paths.stop();
    await a.device.close();
    await b.device.close();
  }
});

test('a ping from a known address with no proven path is answered by a ping at once, not at the next full probe', async () => {
  // The lab's race (docs/nat.md): a's first ping dies at b's NAT, b's ping then
  // gets through a's; before, a waited retryDirectMs (10 s) to ping again.
  const net = new MemNet();
  const clock = new FakeClock();
  const a = await node(net, '10.0.0.1', clock);
  const b = await node(net, '10.0.0.2', clock);
  try {
    a.device.addPeer(b.nodePub);
    b.device.addPeer(a.nodePub);
    a.paths.setPeers([{ nodeKey: b.nodePub, discoKey: b.discoPub, candidates: [b.ep], homeRelay: null }]);
    assert.equal(net.queue.length, 1, 'a pinged b');
    net.queue.length = 0; // b's NAT drops it: b has sent nothing to a yet
    // b's ping comes soon after (the lab: within ~10–100 ms), before any rate limit has run out
    clock.advance(50);
    b.paths.setPeers([{ nodeKey: a.nodePub, discoKey: a.discoPub, candidates: [a.ep], homeRelay: null }]);
    net.pump();
    const pb = b.paths.pathOf(a.nodePub);
    assert.equal(pb.kind === 'direct' && pb.trusted, true, 'b proved its path by a’s pong');
    const pa = a.paths.pathOf(b.nodePub);
    assert.equal(pa.kind === 'direct' && pa.trusted, true, 'a proved its own by pinging back');
    assert.equal(a.paths.stats.tx, 3, 'a: the lost ping, a pong and one ping back');

    // a proven path gets no ping back; an unproven one, after that first, at most one per PING_BACK_MIN_MS
    const ping = () => sealDisco({ type: 'ping', txid: Buffer.alloc(12, 7), nodeKey: b.nodePub }, b.discoPub, boxKey(b.discoPriv, a.discoPub));
    const before = a.paths.stats.tx;
    a.paths.receive(ping(), b.ep);
    assert.equal(a.paths.stats.tx - before, 1, 'only the pong');
    clock.advance(10_000); // trust has lapsed (the heartbeats meanwhile re-pinged the path: nobody answered)
    const lapsed = a.paths.stats.tx;
    a.paths.receive(ping(), b.ep);
    a.paths.receive(ping(), b.ep);
    assert.equal(a.paths.stats.tx - lapsed, 3, 'two pongs and a single ping back');
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
    a.paths.receive(pkt, { address: '10.0.0.7', port: 1 });
    assert.equal(a.paths.stats.dropped.unknownSender, 1);
    const friend = generatePrivateKey();
    a.paths.setPeers([{ nodeKey: publicKeyOf(generatePrivateKey()), discoKey: publicKeyOf(friend), candidates: [], homeRelay: null }]);
    const good = sealDisco({ type: 'callMeMaybe', endpoints: [] }, publicKeyOf(friend), boxKey(friend, a.discoPub));
    good[good.length - 1]! ^= 0xff;
    a.paths.receive(good, { address: '10.0.0.7', port: 1 });
    assert.equal(a.paths.stats.dropped.badBox, 1);
    assert.equal(a.device.stats.dropped.internalError, 0);
  } finally {
    a.paths.stop();
    await a.device.close();
  }
});

test('WireGuard roaming leaves a virtual endpoint alone; a real one still roams', () => {
  const dev = new Device();
  dev.setPrivateKey(generatePrivateKey());
  const pinned = dev.addPeer(publicKeyOf(generatePrivateKey()));
  const virt = virtualEndpoint(pinned.publicKey);
  pinned.setEndpoint(virt);
  pinned.roam({ address: '10.0.0.9', port: 1 });
  assert.deepEqual(pinned.endpoint, virt, 'path selection keeps the endpoint');
  const plain = dev.addPeer(publicKeyOf(generatePrivateKey()));
  plain.setEndpoint({ address: '10.0.0.1', port: 51820 });
  plain.roam({ address: '10.0.0.9', port: 1 });
  assert.deepEqual(plain.endpoint, { address: '10.0.0.9', port: 1 }, 'ordinary WireGuard roaming');
});

test('a handshake sent before any path existed is resent when one opens, not after REKEY_TIMEOUT: once it is 50 ms old, at most one per 50 ms', async () => {
  const net = new MemNet();
  const clock = new FakeClock();
  const a = await node(net, '10.0.0.1', clock);
  const bKey = generatePrivateKey();
  try {
    const peer = a.device.addPeer(publicKeyOf(bKey));
    a.device.allowedIps.insert('10.9.0.2', 32, peer);
    peer.setEndpoint({ address: '10.0.0.99', port: 41641 }); // nobody there: the initiation is lost
    const initiations = () => net.queue.filter((d) => d.buf[0] === 1 && d.dst.address === '10.0.0.99').length;
    a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
    a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
    assert.equal(initiations(), 1, 'one initiation, then REKEY_TIMEOUT holds the next');
    peer.pathOpened();
    assert.equal(initiations(), 1, "a path that opens right after the initiation: not at once (the peer's flood guard)");
    clock.advance(PATH_OPENED_ELSEWHERE_MIN_MS - 1);
    assert.equal(initiations(), 1);
    clock.advance(1);
    assert.equal(initiations(), 2, 'resent once it is PATH_OPENED_ELSEWHERE_MIN_MS old, without waiting for REKEY_TIMEOUT');
    // ways opening every 5 ms for a second: one resend per PATH_OPENED_ELSEWHERE_MIN_MS at most, never a storm
    for (let t = 0; t < 1000; t += 5) {
      peer.pathOpened();
      clock.advance(5);
    }
    assert.equal(initiations(), 2 + 1000 / PATH_OPENED_ELSEWHERE_MIN_MS);
    assert.equal(a.device.stats.handshakes.resentOnPath, 1 + 1000 / PATH_OPENED_ELSEWHERE_MIN_MS);
    // no more ways open: nothing more until REKEY_TIMEOUT
    clock.advance(4000);
    assert.equal(initiations(), 2 + 1000 / PATH_OPENED_ELSEWHERE_MIN_MS);
  } finally {
    a.paths.stop();
    await a.device.close();
  }
});

test('a relayed packet is not copied to an unproven or lapsed direct path; with no relay the best guess carries it', async () => {
  const net = new MemNet();
  const clock = new FakeClock();
  let relayed = 0;
  let relayUp = true;
  const a = await node(net, '10.0.0.1', clock, { send: () => (relayed++, true), connected: () => relayUp });
  const b = await node(net, '10.0.0.2', clock);
  try {
    b.paths.setPeers([{ nodeKey: a.nodePub, discoKey: a.discoPub, candidates: [], homeRelay: null }]);
    a.paths.setPeers([{ nodeKey: b.nodePub, discoKey: b.discoPub, candidates: [b.ep], homeRelay: 'r1' }]);
    const virt = virtualEndpoint(b.nodePub).address;
    const direct = () => net.queue.filter((d) => d.dst.address === b.ep.address && d.buf[0] === 4).length;
    const send = () => a.paths.sendToPeer(virt, Buffer.from([4, 0, 0, 0, 1, 2, 3]));
    send();
    assert.deepEqual([relayed, direct()], [1, 0], 'an unproven candidate gets no copy while the relay carries the packet');
    net.pump(); // the disco ping sent at setPeers reaches b, its pong proves b.ep
    assert.equal(a.paths.pathOf(b.nodePub).kind, 'direct');
    net.queue.length = 0;
    send();
    assert.deepEqual([relayed, direct()], [1, 1], 'a proven path carries it alone');
    clock.advance(a.paths.timers.trustMs + 1); // trust lapsed (idle: no heartbeat): the relay alone, and a ping to re-prove the path
    net.queue.length = 0;
    send();
    assert.deepEqual([relayed, direct()], [2, 0]);
    assert.ok(
      net.queue.some((d) => d.dst.address === b.ep.address && d.buf[0] === 0x6d),
      'a disco ping re-proves the path',
    );
    relayUp = false; // no relay: the best guess is all there is
    send();
    assert.deepEqual([relayed, direct()], [2, 1]);
  } finally {
    a.paths.stop();
    b.paths.stop();
    await a.device.close();
    await b.device.close();
  }
});

test('on the fake clock: heartbeats keep a direct path, its lapse moves to the relay, a pong re-proves it, a better path wins only by the margin', async () => {
  // b is scripted: the test answers a's disco pings itself, from the address and after the delay it chooses
  const net = new MemNet();
  const clock = new FakeClock();
  const relayedData: number[] = [];
  // b never answers the handshake: the silence watch (its own test) would probe between the beats this test counts
  const a = await node(net, '10.0.0.1', clock, { send: (_r, _dst, pkt) => (relayedData.push(pkt[0]!), true), connected: () => true }, { silenceMs: 60_000 });
  const bDisco = generatePrivateKey();
  const bPub = publicKeyOf(generatePrivateKey());
  const shared = boxKey(bDisco, a.discoPub);
  const ep1 = { address: '10.0.0.2', port: 41641 };
  const ep2 = { address: '10.0.0.3', port: 41641 };
  const { heartbeatMs, trustMs, upgradeMs } = a.paths.timers;
  /** a's disco pings in flight, by destination address; the rest of the queue (WireGuard handshakes) is dropped */
  const takePings = (): Map<string, Buffer[]> => {
    const out = new Map<string, Buffer[]>();
    for (const d of net.queue) {
      if (d.buf[0] !== 0x6d) continue;
      const m = openDisco(d.buf, shared);
      if (m?.type === 'ping') out.set(d.dst.address, [...(out.get(d.dst.address) ?? []), m.txid]);
    }
    net.queue.length = 0;
    return out;
  };
  /** answers the pings sent to each endpoint after its latency, from `from` (default: that endpoint) */
  const answer = (replies: { to: typeof ep1; latencyMs: number; from?: typeof ep1 }[], sent = takePings()): number => {
    const start = clock.now();
    let n = 0;
    for (const r of [...replies].sort((x, y) => x.latencyMs - y.latencyMs)) {
      clock.advance(start + r.latencyMs - clock.now());
      for (const txid of sent.get(r.to.address) ?? []) {
        a.paths.receive(sealDisco({ type: 'pong', txid, src: a.ep }, publicKeyOf(bDisco), shared), r.from ?? r.to);
        n++;
      }
    }
    return n;
  };
  let beatAt = 0;
  const nextBeat = () => clock.advance((beatAt += heartbeatMs) - clock.now());
  const best = () => {
    const p = a.paths.pathOf(bPub);
    return p.kind === 'direct' ? `${p.endpoint.address} trusted=${p.trusted}` : p.kind;
  };
  try {
    const peer = a.device.addPeer(bPub);
    a.device.allowedIps.insert('10.9.0.2', 32, peer);
    a.paths.setPeers([{ nodeKey: bPub, discoKey: publicKeyOf(bDisco), candidates: [ep1], homeRelay: 'r1' }]);
    // traffic makes the peer active: b never answers the handshake, so a retries it every REKEY_TIMEOUT
    a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
    assert.equal(best(), 'relay', 'no pong yet: the relay carries the handshake');
    assert.equal(answer([{ to: ep1, latencyMs: 10 }]), 1);
    assert.equal(best(), '10.0.0.2 trusted=true');
    const changesBefore = a.changes.length;

    // heartbeat: one ping per beat to the current path keeps it trusted well past trustMs
    for (let i = 0; i < 6; i++) {
      nextBeat();
      assert.equal(answer([{ to: ep1, latencyMs: 10 }]), 1, `heartbeat ${i}`);
    }
    assert.ok(clock.now() > 2 * trustMs);
    assert.equal(best(), '10.0.0.2 trusted=true');
    assert.equal(a.changes.length, changesBefore, 'a pong on the path that stayed trusted is no path change');
    const lastPong = clock.now();

    // a pong from the wrong source proves nothing, and is counted
    nextBeat();
    const unknownTx = a.paths.stats.dropped.unknownTx;
    assert.equal(answer([{ to: ep1, latencyMs: 10, from: { address: '10.0.0.66', port: 41641 } }]), 1);
    assert.equal(a.paths.stats.dropped.unknownTx - unknownTx, 1);

    // lapse: with no pong the direct path is trusted until trustMs after the last one, then the relay carries the traffic
    clock.advance(lastPong + trustMs - clock.now());
    assert.equal(best(), '10.0.0.2 trusted=true');
    takePings();
    clock.advance(1);
    assert.equal(best(), 'relay');
    while (beatAt < clock.now()) beatAt += heartbeatMs;
    nextBeat();
    assert.deepEqual(a.changes.at(-1), { kind: 'relay', region: 'r1', latencyMs: null }, 'the lapse is reported at the next beat');
    takePings();
    const relayedBefore = relayedData.length;
    a.paths.sendToPeer(virtualEndpoint(bPub).address, Buffer.from([4, 0, 0, 0, 1, 2, 3]));
    assert.deepEqual(relayedData.slice(relayedBefore), [4], 'data goes through the relay');

    // the lapsed path is still pinged each beat; its first pong makes it the path again at once
    nextBeat();
    assert.ok(answer([{ to: ep1, latencyMs: 10 }]) >= 1);
    assert.equal(best(), '10.0.0.2 trusted=true');
    assert.equal(a.changes.at(-1)?.kind, 'direct');

    // a second candidate 1 ms faster is inside the hysteresis (20 %, at least 1 ms): no switch
    a.paths.setPeers([{ nodeKey: bPub, discoKey: publicKeyOf(bDisco), candidates: [ep1, ep2], homeRelay: 'r1' }]);
    const fullProbeAt = clock.now();
    answer([
      { to: ep1, latencyMs: 10 },
      { to: ep2, latencyMs: 9 },
    ]);
    assert.equal(best(), '10.0.0.2 trusted=true', 'not enough better');
    // heartbeats go to the current path only, until the upgrade probe pings every candidate after upgradeMs
    const ep2Pings = (m: Map<string, Buffer[]>) => m.get(ep2.address)?.length ?? 0;
    while (beatAt + heartbeatMs < fullProbeAt + upgradeMs) {
      nextBeat();
      const sent = takePings();
      assert.equal(ep2Pings(sent), 0, `no upgrade probe at ${clock.now()} ms`);
      assert.equal(answer([{ to: ep1, latencyMs: 10 }], sent), 1);
    }
    nextBeat();
    assert.ok(clock.now() >= fullProbeAt + upgradeMs);
    answer([
      { to: ep1, latencyMs: 10 },
      { to: ep2, latencyMs: 5 },
    ]);
    assert.equal(best(), '10.0.0.3 trusted=true', 'half the latency: the upgrade wins');
    assert.deepEqual(a.changes.at(-1), { kind: 'direct', endpoint: ep2, latencyMs: 5, trusted: true });
  } finally {
    a.paths.stop();
    await a.device.close();
  }
});

test('over a trusted direct path, batched packets are sealed in place in the UDP batch; without one nothing is reserved', async () => {
  const net = new MemNet();
  const a = await node(net, '10.0.0.1');
  const b = await node(net, '10.0.0.2');
  const got: Buffer[] = [];
  b.device.attachTun((p) => (got.push(Buffer.from(p)), true));
  try {
    await peerEachOther(a, b);
    b.paths.setPeers([{ nodeKey: a.nodePub, discoKey: a.discoPub, candidates: [], homeRelay: null }]);
    a.paths.setPeers([{ nodeKey: b.nodePub, discoKey: b.discoPub, candidates: [b.ep], homeRelay: null }]);
    assert.equal(a.paths.directEndpoint(virtualEndpoint(b.nodePub).address), null, 'no trusted path before a pong');
    a.pathBind.beginBatch();
    assert.equal(a.pathBind.reserve(100, virtualEndpoint(b.nodePub)), -1, 'untrusted path: no room offered, send() (relay or guess) decides');
    a.pathBind.commit(); // a commit with nothing reserved sends and counts nothing
    a.pathBind.flushBatch();
    assert.equal(net.queue.length + a.bind.inPlace + a.paths.sendStats.direct, 1, 'only the disco ping is in flight');
    net.pump(); // disco ping and pong: the path is proven
    assert.deepEqual(a.paths.directEndpoint(virtualEndpoint(b.nodePub).address), b.ep);
    a.device.sendPackets([ipv4Packet('10.9.0.1', '10.9.0.2', 40)]); // staged for the handshake
    for (let i = 0; i < 4; i++) net.pump();
    assert.equal(got.length, 1);
    const before = { ...a.paths.sendStats };
    const pkts = [10, 200, 1300].map((n, k) => ipv4Packet('10.9.0.1', '10.9.0.2', n, k + 1));
    a.device.sendPackets(pkts);
    net.pump();
    assert.equal(a.bind.inPlace, 3, 'the three went through reserve/commit');
    assert.equal(a.paths.sendStats.direct - before.direct, 3, 'and were counted as direct sends');
    assert.deepEqual(got.slice(1), pkts, 'b decrypted each one intact');
  } finally {
    a.paths.stop();
    b.paths.stop();
    await a.device.close();
    await b.device.close();
  }
});

test('traffic is counted by the path that carried it (relayed under relay, then direct under direct, each way); pathCounts follows the path', async () => {
  const net = new MemNet();
  const clock = new FakeClock();
  // an in-memory relay: what one node sends to a node key arrives at that node's receiveRelayed, from the sender's key
  const byKey = new Map<string, Awaited<ReturnType<typeof node>>>();
  const relayQueue: { to: Buffer; from: Buffer; pkt: Buffer }[] = [];
  const relayed = { bytes: 0 };
  const relayFrom = (from: () => Buffer): RelayPaths => ({
    send: (_region, dst, pkt) => (relayQueue.push({ to: dst, from: from(), pkt: Buffer.from(pkt) }), (relayed.bytes += pkt[0] === 0x6d ? 0 : pkt.length), true),
    connected: () => true,
  });
  let aKey: Buffer = Buffer.alloc(0);
  let bKey: Buffer = Buffer.alloc(0);
  const a = await node(
    net,
    '10.0.0.1',
    clock,
    relayFrom(() => aKey),
  );
  const b = await node(
    net,
    '10.0.0.2',
    clock,
    relayFrom(() => bKey),
  );
  [aKey, bKey] = [a.nodePub, b.nodePub];
  byKey.set(a.nodePub.toString('hex'), a);
  byKey.set(b.nodePub.toString('hex'), b);
  const pump = (): void => {
    for (let i = 0; i < 8; i++) {
      net.pump();
      for (const f of relayQueue.splice(0)) byKey.get(f.to.toString('hex'))!.paths.receiveRelayed('r1', f.from, f.pkt);
    }
  };
  const got: Buffer[] = [];
  b.device.attachTun((p) => (got.push(Buffer.from(p)), true));
  a.device.attachTun(() => true);
  try {
    await peerEachOther(a, b);
    // no candidates: the relay is the only path
    b.paths.setPeers([{ nodeKey: a.nodePub, discoKey: a.discoPub, candidates: [], homeRelay: 'r1' }]);
    a.paths.setPeers([{ nodeKey: b.nodePub, discoKey: b.discoPub, candidates: [], homeRelay: 'r1' }]);
    assert.deepEqual(a.paths.pathCounts(), { direct: 0, relay: 1 }, 'the path summary: one peer, relayed');
    a.device.sendPackets([ipv4Packet('10.9.0.1', '10.9.0.2', 100)]);
    pump();
    assert.equal(got.length, 1, 'the packet crossed the relay');
    assert.equal(a.paths.traffic.directSentPackets + a.paths.traffic.directReceivedPackets, 0, 'nothing went direct');
    assert.ok(a.paths.traffic.relaySentPackets >= 2, 'the handshake initiation and the data went by relay');
    assert.equal(
      a.paths.traffic.relaySentPackets + b.paths.traffic.relaySentPackets,
      b.paths.traffic.relayReceivedPackets + a.paths.traffic.relayReceivedPackets,
    );
    assert.equal(a.paths.traffic.relaySentBytes + b.paths.traffic.relaySentBytes, relayed.bytes, 'bytes: the WireGuard datagrams the relay carried');
    assert.equal(b.paths.traffic.relayReceivedBytes, a.paths.traffic.relaySentBytes);

    // a candidate that answers: the path turns direct, and data is counted there
    a.paths.setPeers([{ nodeKey: b.nodePub, discoKey: b.discoPub, candidates: [b.ep], homeRelay: 'r1' }]);
    pump();
    assert.equal(a.paths.pathOf(b.nodePub).kind, 'direct');
    assert.deepEqual(a.paths.pathCounts(), { direct: 1, relay: 0 }, 'the path summary follows: the peer is direct');
    const before = { a: { ...a.paths.traffic }, b: { ...b.paths.traffic } };
    const pkts = [10, 200, 1300].map((n, k) => ipv4Packet('10.9.0.1', '10.9.0.2', n, k + 1));
    a.device.sendPackets(pkts);
    pump();
    assert.equal(got.length, 4);
    const wire = pkts.reduce((n, p) => n + p.length + 32 + ((16 - (p.length % 16)) % 16), 0); // header 16 + tag 16 + padding to 16
    assert.equal(a.paths.traffic.directSentPackets - before.a.directSentPackets, 3);
    assert.equal(a.paths.traffic.directSentBytes - before.a.directSentBytes, wire);
    assert.equal(b.paths.traffic.directReceivedPackets - before.b.directReceivedPackets, 3);
    assert.equal(b.paths.traffic.directReceivedBytes - before.b.directReceivedBytes, wire);
    assert.equal(a.paths.traffic.relaySentPackets, before.a.relaySentPackets, 'no data by relay once direct');
    a.paths.setPeers([]);
    assert.deepEqual(a.paths.pathCounts(), { direct: 0, relay: 0 }, 'a peer gone from the map counts nowhere');
    // a datagram to a real endpoint (a stock WireGuard device behind this node) goes on UDP: direct
    const plain = { ...a.paths.traffic };
    assert.ok(a.pathBind.send(Buffer.alloc(50, 4), { address: '10.0.0.9', port: 51820 }));
    assert.deepEqual([a.paths.traffic.directSentPackets - plain.directSentPackets, a.paths.traffic.directSentBytes - plain.directSentBytes], [1, 50]);
  } finally {
    a.paths.stop();
    b.paths.stop();
    await a.device.close();
    await b.device.close();
  }
});
