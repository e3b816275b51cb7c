// A direct path that dies under traffic, on a fake clock with an in-memory
// network, a relay and, for one node, a NAT router that forgets its mappings:
// how long each side keeps sending into the dead path. With traffic both ways
// every 100 ms, the longest run of packets that do not arrive is measured in
// fake time, from the fault on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Device } from '../../src/engine/device/device.js';
import { FakeClock } from '../../src/engine/clock.js';
import { PathManager, type PathTimers, type RelayPaths } from '../../src/engine/paths/paths.js';
import { PathBind } from '../../src/engine/paths/pathbind.js';
import { endpointKey, type Endpoint } from '../../src/engine/conn/endpoint.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { ipv4Packet, MemNet, type Datagram } from '../helpers/memnet.js';

const REGION = 'r1';
/** traffic both ways this often, as the soak's and the lab's pings */
const STEP_MS = 100;

/**
 * A NAT router in front of one host, as the lab's hard kind: each destination gets its own public port, and only that
 * destination may answer on it. `forget` is the router's WAN link bouncing: every mapping gone, new ones on new ports.
 */
class HardNat {
  private readonly out = new Map<string, number>();
  private readonly allowed = new Map<number, string>();
  private nextPort = 20_000;
  constructor(
    readonly lan: Endpoint,
    readonly publicAddress: string,
  ) {}

  forget(): void {
    this.out.clear();
    this.allowed.clear();
    this.nextPort += 1000;
  }

  /** Rewrites a datagram crossing the router in place; false: the router drops it. */
  pass(d: Datagram): boolean {
    if (d.src.address === this.lan.address && d.src.port === this.lan.port) {
      const k = endpointKey(d.dst);
      let port = this.out.get(k);
      if (port === undefined) {
        port = this.nextPort++;
        this.out.set(k, port);
        this.allowed.set(port, k);
      }
      d.src = { address: this.publicAddress, port };
      return true;
    }
    if (d.dst.address !== this.publicAddress) return true;
    if (this.allowed.get(d.dst.port) !== endpointKey(d.src)) return false;
    d.dst = { ...this.lan };
    return true;
  }
}

type Node = Awaited<ReturnType<typeof node>>;

async function node(net: MemNet, address: string, clock: FakeClock, relay: RelayPaths, timers?: Partial<PathTimers>) {
  const nodeKey = generatePrivateKey();
  const disco = generatePrivateKey();
  const device = new Device({ clock });
  device.setPrivateKey(nodeKey);
  const bind = net.bind(address);
  const paths = new PathManager(device, bind, { privateKey: disco, publicKey: publicKeyOf(disco) }, publicKeyOf(nodeKey), { relay, timers });
  await device.attachBind(new PathBind(bind, paths), 41641);
  /** fake-clock times at which a packet through the tunnel arrived here */
  const arrivals: number[] = [];
  device.attachTun(() => (arrivals.push(clock.now()), true));
  return { device, paths, arrivals, nodePub: publicKeyOf(nodeKey), discoPub: publicKeyOf(disco), ep: { address, port: 41641 } };
}

/** Two nodes (a at 10.9.0.1, b at 10.9.0.2 inside the tunnel), an in-memory relay both are connected to, and the fake clock. */
async function mesh(aAddress: string, bAddress: string, timers?: Partial<PathTimers>) {
  const net = new MemNet();
  const clock = new FakeClock();
  const relayQueue: { to: Buffer; from: Buffer; pkt: Buffer }[] = [];
  /**
   * `dropping`: the relay takes packets and delivers none (their destination is not connected to it); `disconnected`:
   * the nodes' own connections to it are down (nothing can be sent through it)
   */
  const relayed = { packets: 0, dropping: false, disconnected: false, dropped: [] as Buffer[] };
  let aKey: Buffer = Buffer.alloc(0);
  let bKey: Buffer = Buffer.alloc(0);
  const relayFrom = (from: () => Buffer): RelayPaths => ({
    send: (_region, dst, pkt) => {
      if (relayed.dropping) return relayed.dropped.push(Buffer.from(pkt)) > 0;
      relayQueue.push({ to: dst, from: from(), pkt: Buffer.from(pkt) });
      if (pkt[0] !== 0x6d) relayed.packets++;
      return true;
    },
    connected: () => !relayed.disconnected,
  });
  const a = await node(
    net,
    aAddress,
    clock,
    relayFrom(() => aKey),
    timers,
  );
  const b = await node(
    net,
    bAddress,
    clock,
    relayFrom(() => bKey),
    timers,
  );
  aKey = a.nodePub;
  bKey = b.nodePub;
  const byKey = new Map<string, Node>([
    [a.nodePub.toString('hex'), a],
    [b.nodePub.toString('hex'), b],
  ]);
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
  const pump = (): void => {
    for (let i = 0; i < 8 && (net.queue.length > 0 || relayQueue.length > 0); i++) {
      net.pump();
      for (const f of relayQueue.splice(0)) byKey.get(f.to.toString('hex'))!.paths.receiveRelayed(REGION, f.from, f.pkt);
    }
  };
  /** `ms` of traffic: every STEP_MS, a sends a packet to b and b to a (`bSends` false: a alone, a one-way stream) */
  const run = (ms: number, bSends = true): void => {
    for (let t = 0; t < ms; t += STEP_MS) {
      clock.advance(STEP_MS);
      pump();
      a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
      if (bSends) b.device.sendPacket(ipv4Packet('10.9.0.2', '10.9.0.1', 40));
      pump();
    }
  };
  const close = async (): Promise<void> => {
    a.paths.stop();
    b.paths.stop();
    await a.device.close();
    await b.device.close();
  };
  return { net, clock, a, b, run, pump, relayed, relayQueue, close };
}

/** The longest time between two arrivals (or from `since` to the first, or the last to `until`). */
function longestGapMs(arrivals: number[], since: number, until: number): number {
  let last = since;
  let worst = 0;
  for (const t of arrivals) {
    if (t < since || t > until) continue;
    worst = Math.max(worst, t - last);
    last = t;
  }
  return Math.max(worst, until - last);
}

/** Advances to just after b's next heartbeat (every heartbeatMs from the start): the worst moment for a path to die. */
function afterBeat(m: Awaited<ReturnType<typeof mesh>>): void {
  const hb = m.b.paths.timers.heartbeatMs;
  const next = Math.ceil((m.clock.now() + 1) / hb) * hb;
  m.run(next - m.clock.now() + STEP_MS);
}

test('the hard NAT in front of a peer forgets its mappings: the other side moves to the new mapping within 2 s, not after the trust window', async () => {
  // a is behind a hard NAT, b is public (the soak's node3-hard → node4-public): a's packets to b come from a new
  // public port once the router forgot the old one, so a's own path to b keeps working; b's path to a (the old port)
  // is dead, and before, b went on sending into it until its trust ran out (3.5 s after its last pong)
  const m = await mesh('192.168.1.2', '7.0.0.2');
  const nat = new HardNat(m.a.ep, '7.0.0.1');
  m.net.filter = (d) => nat.pass(d);
  try {
    m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [], homeRelay: REGION }]);
    m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [m.b.ep], homeRelay: REGION }]);
    m.run(1000, false); // a alone first: one handshake, not two crossing
    m.run(5000);
    const before = m.b.paths.pathOf(m.a.nodePub);
    assert.equal(before.kind === 'direct' && before.trusted && before.endpoint.address, '7.0.0.1', 'b reaches a through its NAT');
    const oldPort = before.kind === 'direct' ? before.endpoint.port : 0;
    const steady = [m.a.paths.stats, m.b.paths.stats].map((s) => s.suspectPaths + s.earlyProbes);
    const copies = m.a.paths.sendStats.both + m.b.paths.sendStats.both;

    afterBeat(m);
    const t0 = m.clock.now();
    nat.forget();
    m.run(8000);
    const gap = longestGapMs(m.a.arrivals, t0, m.clock.now());
    const after = m.b.paths.pathOf(m.a.nodePub);
    process.stderr.write(`  b → a: longest gap ${gap} ms (fake time); b's path ${JSON.stringify(after)}; b's disco ${JSON.stringify(m.b.paths.stats)}\n`);
    assert.ok(after.kind === 'direct' && after.trusted && after.endpoint.address === '7.0.0.1' && after.endpoint.port !== oldPort, 'b uses the new mapping');
    assert.ok(gap <= 2000, `b → a lost ${gap} ms of traffic (at most 2000: the peer's ping from its new port, then lostPingMs)`);
    assert.deepEqual([...steady, copies], [0, 0, 0], 'before the fault, with every pong answered: no early probe, no copy');
    assert.ok(m.b.paths.stats.suspectSwitches >= 1, 'b switched when its path went silent while the new one answered');
  } finally {
    await m.close();
  }
});

test('a direct path that dies both ways: traffic goes through the relay too within 2 s, and back to direct alone once a pong returns', async () => {
  const m = await mesh('7.0.0.1', '7.0.0.2');
  let cut = false;
  m.net.filter = () => !cut;
  try {
    m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [m.a.ep], homeRelay: REGION }]);
    m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [m.b.ep], homeRelay: REGION }]);
    m.run(1000, false);
    m.run(5000);
    assert.equal(m.a.paths.pathOf(m.b.nodePub).kind, 'direct');
    assert.equal(m.relayed.packets, 0, 'nothing relayed once direct');
    afterBeat(m);
    const t0 = m.clock.now();
    cut = true;
    m.run(2500);
    const p = m.a.paths.pathOf(m.b.nodePub);
    m.run(2500);
    const gaps = [longestGapMs(m.a.arrivals, t0, m.clock.now()), longestGapMs(m.b.arrivals, t0, m.clock.now())];
    process.stderr.write(`  cut: longest gaps b → a ${gaps[0]} ms, a → b ${gaps[1]} ms (fake time); relayed ${m.relayed.packets}\n`);
    for (const g of gaps) assert.ok(g <= 2000, `lost ${g} ms of traffic (at most 2000: silenceMs, then lostPingMs)`);
    assert.equal(p.kind === 'direct' && p.trusted, true, '2.5 s after the cut, inside the trust window: status said direct while the relay carried copies');
    assert.equal(m.a.paths.pathOf(m.b.nodePub).kind, 'relay', 'after it: the relay alone');

    // the path comes back: the next pong re-confirms it, and the copies stop
    cut = false;
    m.run(3000);
    const relayedThen = m.relayed.packets;
    m.run(3000);
    assert.equal(m.relayed.packets, relayedThen, 'direct alone again');
    assert.equal(m.a.paths.pathOf(m.b.nodePub).kind, 'direct');
  } finally {
    await m.close();
  }
});

test('a one-way stream on a live path: early probes at most one per silenceMs, their pongs keep it from being suspect, nothing copied', async () => {
  const m = await mesh('7.0.0.1', '7.0.0.2');
  try {
    m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [m.a.ep], homeRelay: REGION }]);
    m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [m.b.ep], homeRelay: REGION }]);
    m.run(1000, false);
    m.run(2000);
    const before = { ...m.a.paths.stats };
    const relayed = m.relayed.packets;
    const ms = 20_000;
    m.run(ms, false);
    const early = m.a.paths.stats.earlyProbes - before.earlyProbes;
    process.stderr.write(`  one-way: ${early} early probes in ${ms} ms\n`);
    assert.ok(early >= 1, 'the silence was noticed');
    assert.ok(early <= ms / m.a.paths.timers.silenceMs, `${early} early probes: at most one per silenceMs`);
    assert.equal(m.a.paths.stats.suspectPaths, before.suspectPaths, 'every probe answered: never suspect');
    assert.equal(m.relayed.packets, relayed, 'nothing copied to the relay');
  } finally {
    await m.close();
  }
});

test('a peer whose NAT gives it a new mapping 40 times (more than MAX_CANDIDATES): each new one still becomes the path', async () => {
  // each rebind leaves a dead candidate behind; a full table used to refuse the next, so no ping back and no switch
  const m = await mesh('192.168.1.2', '7.0.0.2');
  const nat = new HardNat(m.a.ep, '7.0.0.1');
  m.net.filter = (d) => nat.pass(d);
  try {
    m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [], homeRelay: REGION }]);
    m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [m.b.ep], homeRelay: REGION }]);
    m.run(1000, false);
    m.run(3000);
    const ports = new Set<number>();
    for (let i = 0; i < 40; i++) {
      nat.forget();
      m.run(3000);
      const p = m.b.paths.pathOf(m.a.nodePub);
      assert.ok(p.kind === 'direct' && p.trusted && !ports.has(p.endpoint.port), `rebind ${i + 1}: b's path ${JSON.stringify(p)}`);
      ports.add(p.endpoint.port);
    }
  } finally {
    await m.close();
  }
});

test('a handshake initiation the relay dropped (the peer not connected to it yet) is resent when a direct path opens 60 ms later', async () => {
  // the soak's 6.5 s window: node4 came up, node3's first initiation went through a relay node4 had not reached yet,
  // and node3's direct path opened within PATH_OPENED_RESEND_MIN_MS, so the next try waited for REKEY_TIMEOUT (5 s)
  const m = await mesh('7.0.0.1', '7.0.0.2');
  try {
    m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [], homeRelay: REGION }]);
    m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [m.b.ep], homeRelay: REGION }]);
    const pings = m.net.queue.splice(0); // a's first disco pings: held back 60 ms, as a round trip on the internet
    m.relayed.dropping = true; // b is not connected to the relay yet
    m.a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
    assert.equal(m.relayed.dropped.filter((d) => d[0] === 1).length, 1, 'the initiation went to the relay, which dropped it');
    m.relayed.dropping = false;
    m.clock.advance(60);
    m.net.queue.push(...pings);
    m.pump();
    m.pump();
    assert.equal(m.a.paths.pathOf(m.b.nodePub).kind, 'direct');
    m.clock.advance(STEP_MS);
    m.a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
    m.pump();
    assert.ok(m.b.arrivals.length >= 1, `b got ${m.b.arrivals.length} packets 160 ms in: the initiation was resent on the new path`);
  } finally {
    await m.close();
  }
});

/** Sends a packet a→b every 10 ms until b has one (at most `limitMs`): how long after the first one b got data. */
function firstArrivalMs(m: Awaited<ReturnType<typeof mesh>>, limitMs: number, startMs: number): number {
  while (m.b.arrivals.length === 0 && m.clock.now() - startMs < limitMs) {
    m.clock.advance(10);
    m.pump();
    m.a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
    m.pump();
  }
  return m.b.arrivals.length ? m.b.arrivals[0]! - startMs : Infinity;
}

test("the soak's 5.4 s window: an initiation the relay dropped is resent when a direct path opens 25 ms later, once it is 50 ms old", async () => {
  // node4 came up; node3's first initiation went through a relay node4 was not connected to yet, and node3's direct path
  // to node4 was proven 26 ms after node3 re-added it: too soon to resend at once (the peer's flood guard), and nothing
  // resent it later, so the retry waited for REKEY_TIMEOUT (5 s)
  const m = await mesh('7.0.0.1', '7.0.0.2');
  try {
    m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [], homeRelay: REGION }]);
    m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [m.b.ep], homeRelay: REGION }]);
    const pings = m.net.queue.splice(0); // a's first disco pings: held back 25 ms
    m.relayed.dropping = true; // b is not connected to the relay yet
    const start = m.clock.now();
    m.a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
    assert.equal(m.relayed.dropped.filter((d) => d[0] === 1).length, 1, 'the initiation went to the relay, which dropped it');
    m.relayed.dropping = false;
    m.clock.advance(25);
    m.net.queue.push(...pings);
    m.pump();
    assert.equal(m.a.paths.pathOf(m.b.nodePub).kind, 'direct', 'the direct path opened 25 ms after the initiation');
    const ms = firstArrivalMs(m, 6000, start);
    assert.ok(ms <= 200, `b got the first packet ${ms} ms after it was sent (REKEY_TIMEOUT: 5000)`);
    assert.equal(m.a.device.stats.handshakes.resentOnPath, 1);
    assert.equal(m.a.device.stats.handshakes.initiated, 2, 'one resend, no more');
  } finally {
    await m.close();
  }
});

test('an initiation sent while no way to the peer existed is resent when the relay connects 10 ms later', async () => {
  const m = await mesh('7.0.0.1', '7.0.0.2');
  try {
    m.relayed.disconnected = true;
    m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [], homeRelay: REGION }]);
    m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [], homeRelay: REGION }]);
    const start = m.clock.now();
    m.a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
    assert.equal(m.a.paths.sendStats.noPath, 1, 'the initiation had no way to go');
    m.clock.advance(10);
    m.relayed.disconnected = false;
    m.a.paths.relayConnected(REGION);
    const ms = firstArrivalMs(m, 6000, start);
    assert.ok(ms <= 200, `b got the first packet ${ms} ms after it was sent (REKEY_TIMEOUT: 5000)`);
    assert.equal(m.a.device.stats.handshakes.resentOnPath, 1);
  } finally {
    await m.close();
  }
});

test('an initiation sent to a direct guess before the peer listened is resent when a later ping proves that path', async () => {
  // no relay: the initiation goes to the peer's address as a guess, before its socket is open (lost); the peer comes up
  // 20 ms later and pings, our ping back proves the same address: the initiation took this way, but before it was open
  const m = await mesh('7.0.0.1', '7.0.0.2');
  try {
    m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [m.b.ep], homeRelay: null }]);
    m.net.queue.splice(0); // a's pings: b is not listening yet
    const start = m.clock.now();
    m.a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
    const lost = m.net.queue.splice(0);
    assert.equal(lost.filter((d) => d.buf[0] === 1 && d.dst.address === m.b.ep.address).length, 1, 'the initiation went to the guess');
    m.clock.advance(20);
    m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [m.a.ep], homeRelay: null }]);
    m.pump();
    assert.equal(m.a.paths.pathOf(m.b.nodePub).kind, 'direct');
    const ms = firstArrivalMs(m, 6000, start);
    assert.ok(ms <= 200, `b got the first packet ${ms} ms after it was sent (REKEY_TIMEOUT: 5000)`);
  } finally {
    await m.close();
  }
});

test('a start where nothing is lost: an initiation that took the opening path after its probe is not resent', async () => {
  // with a relay too, the path that opens first brings a resend only when the relayed initiation is PATH_OPENED_ELSEWHERE_MIN_MS
  // old by then (here the pongs come 100 ms in, with the relayed answer): one, and nothing more
  for (const [homeRelay, resends] of [
    [null, 0],
    [REGION, 1],
  ] as const) {
    const m = await mesh('7.0.0.1', '7.0.0.2');
    try {
      m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [m.a.ep], homeRelay }]);
      m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [m.b.ep], homeRelay }]);
      m.a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
      m.run(2000);
      assert.ok(m.b.arrivals.length >= 19, `b got ${m.b.arrivals.length} packets`);
      const h = m.a.device.stats.handshakes;
      assert.deepEqual([h.initiated, h.resentOnPath, m.b.device.stats.handshakes.initiated], [1 + resends, resends, 0], `home relay ${homeRelay}`);
    } finally {
      await m.close();
    }
  }
});

test('both sides initiate at once (data both ways as the path opens): the crossing handshakes complete without waiting for REKEY_TIMEOUT', async () => {
  // the lab's down/up with ICMP both ways: each side's initiation reached the other while its own was pending; each
  // answered the other's and dropped its own, so both answers found no index and neither side could send
  const m = await mesh('7.0.0.1', '7.0.0.2');
  try {
    m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [m.a.ep], homeRelay: REGION }]);
    m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [m.b.ep], homeRelay: REGION }]);
    m.pump();
    assert.equal(m.a.paths.pathOf(m.b.nodePub).kind, 'direct');
    assert.equal(m.b.paths.pathOf(m.a.nodePub).kind, 'direct');
    const start = m.clock.now();
    m.run(500);
    const first = (arrivals: number[]): number => (arrivals.length ? arrivals[0]! - start : Infinity);
    assert.ok(
      first(m.b.arrivals) <= 200 && first(m.a.arrivals) <= 200,
      `first packets at a ${first(m.a.arrivals)} ms, b ${first(m.b.arrivals)} ms (REKEY_TIMEOUT: 5000)`,
    );
    assert.ok(m.a.arrivals.length >= 4 && m.b.arrivals.length >= 4, `a got ${m.a.arrivals.length} packets, b ${m.b.arrivals.length}`);
    assert.deepEqual([m.a.device.stats.handshakes.initiated, m.b.device.stats.handshakes.initiated], [1, 1], 'one initiation each, crossing');
  } finally {
    await m.close();
  }
});

test('an initiation the relay carries, with the relay measured at 80 ms: a direct path opening 60 ms in waits 1.5 round trips, and its answer comes first', async () => {
  const m = await mesh('7.0.0.1', '7.0.0.2');
  try {
    m.b.paths.setPeers([{ nodeKey: m.a.nodePub, discoKey: m.a.discoPub, candidates: [], homeRelay: REGION }]);
    m.a.paths.setPeers([{ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [], homeRelay: REGION }]);
    m.pump();
    m.clock.advance(1000);
    const pinged = m.a.paths.ping(m.b.nodePub, 1000);
    m.clock.advance(80); // the relay's round trip
    m.pump();
    assert.deepEqual(await pinged, { kind: 'relay', region: REGION, latencyMs: 80 });
    m.a.device.sendPacket(ipv4Packet('10.9.0.1', '10.9.0.2', 40));
    const relayed = m.relayQueue.splice(0); // the initiation, on its way through the relay
    assert.equal(relayed.filter((f) => f.pkt[0] === 1).length, 1);
    m.clock.advance(60);
    m.a.paths.addPeer({ nodeKey: m.b.nodePub, discoKey: m.b.discoPub, candidates: [m.b.ep], homeRelay: REGION });
    m.net.pump();
    assert.equal(m.a.paths.pathOf(m.b.nodePub).kind, 'direct', 'a direct path opened 60 ms after the relayed initiation');
    m.clock.advance(30); // the relayed initiation arrives; b answers it
    m.relayQueue.push(...relayed);
    m.pump();
    m.run(500);
    assert.ok(m.b.arrivals.length >= 1);
    assert.deepEqual([m.a.device.stats.handshakes.initiated, m.a.device.stats.handshakes.resentOnPath], [1, 0], 'no resend: the answer came first');
  } finally {
    await m.close();
  }
});
