// Port prediction (birthday.ts): the budget's arithmetic; the scheduler on a
// fake clock (pace, budget, distinct ports, stop on a win, everything closed
// and cleared on failure, backoff); and two engines on loopback UDP where the
// "hard" side's winning socket carries the peer's WireGuard traffic both ways.
import { newPunchState } from '../../src/engine/paths/punch.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/engine/clock.js';
import { BirthdayPunch, isPublicIpv4, type BirthdayHost, type NatMapping } from '../../src/engine/paths/birthday.js';
import { attemptMs, backoffMs, DEFAULT_BIRTHDAY_BUDGET, missProbability } from '../../src/engine/paths/birthday-budget.js';
import { openPeerSocket, type PeerSocket } from '../../src/engine/paths/peer-socket.js';
import type { Candidate, PeerPaths } from '../../src/engine/paths/types.js';
import type { Endpoint } from '../../src/engine/conn/endpoint.js';
import { virtualEndpoint } from '../../src/engine/conn/endpoint.js';
import { boxKey, openBox } from '../../src/crypto/box.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { openDisco, sealDisco, type DiscoMessage } from '../../src/nat/disco.js';
import { Device } from '../../src/engine/device/device.js';
import { UdpBind } from '../../src/engine/conn/udp.js';
import type { NetBind } from '../../src/engine/conn/bind.js';
import { PathManager, type RelayPaths } from '../../src/engine/paths/paths.js';
import { PathBind } from '../../src/engine/paths/pathbind.js';
import { ipv4Packet } from '../helpers/memnet.js';
import { until } from '../helpers/loopback-pair.js';

/** A FakeClock that knows which timers are still pending. */
class CountingClock extends FakeClock {
  readonly live = new Set<unknown>();
  override setTimeout(fn: () => void, ms: number): unknown {
    const h: unknown = super.setTimeout(() => {
      this.live.delete(h);
      fn();
    }, ms);
    this.live.add(h);
    return h;
  }
  override clearTimeout(h: unknown): void {
    this.live.delete(h);
    super.clearTimeout(h);
  }
}

/** Keys of "us" and the peer, and the peer's record as path selection would hold it. */
function peerOf(candidates: Endpoint[]) {
  const ourDisco = generatePrivateKey();
  const theirDisco = generatePrivateKey();
  const theirNode = publicKeyOf(generatePrivateKey());
  const cands = new Map<string, Candidate>();
  for (const ep of candidates)
    cands.set(`${ep.address}:${ep.port}`, { ep, latencyMs: null, lastPongMs: null, lastPingMs: -Infinity, pingedBack: false, unansweredSinceMs: null });
  const p: PeerPaths = {
    nodeKey: theirNode,
    hex: theirNode.toString('hex'),
    virtual: virtualEndpoint(theirNode),
    discoKey: publicKeyOf(theirDisco),
    sharedKey: boxKey(ourDisco, publicKeyOf(theirDisco)),
    homeRelay: 'r1',
    candidates: cands,
    best: null,
    relayLatencyMs: null,
    lastActivityBytes: 0,
    lastActiveMs: -Infinity,
    lastFullProbeMs: 0,
    lastWakePingMs: -Infinity,
    punch: newPunchState(),
    initiationMs: -Infinity,
    initiationWay: null,
    silence: { txBytes: 0, rxBytes: 0, rxChangedMs: 0 },
  };
  // what the peer seals with, and opens ours with
  const theirKey = boxKey(theirDisco, publicKeyOf(ourDisco));
  return { p, ourDiscoPub: publicKeyOf(ourDisco), theirDiscoPub: publicKeyOf(theirDisco), theirKey, ourNode: publicKeyOf(generatePrivateKey()) };
}

interface FakeSocket extends PeerSocket {
  closed: boolean;
  sent: { buf: Buffer; ep: Endpoint }[];
  deliver(buf: Buffer, src: Endpoint): void;
}

function harness(role: NatMapping, candidates: Endpoint[]) {
  const clock = new CountingClock();
  const k = peerOf(candidates);
  const mainSent: { at: number; buf: Buffer; ep: Endpoint }[] = [];
  const asked: { mapping: NatMapping; predict: boolean }[] = [];
  const proven: { ep: Endpoint; sock: PeerSocket | null }[] = [];
  const sockets: FakeSocket[] = [];
  let trusted = false;
  const host: BirthdayHost = {
    clock,
    nodeKey: k.ourNode,
    ourMapping: () => role,
    seal: (p, m) => sealDisco(m, k.ourDiscoPub, p.sharedKey),
    sendMain: (buf, ep) => (mainSent.push({ at: clock.now(), buf, ep }), true),
    callMeMaybe: (_p, hint) => asked.push(hint),
    trusted: () => trusted,
    proven: (_p, ep, sock) => proven.push({ ep, sock }),
    deliver: () => {},
    openSocket: async (onMessage) => {
      const s: FakeSocket = {
        localPort: 50000 + sockets.length,
        closed: false,
        sent: [],
        send(buf, ep) {
          if (this.closed) return false;
          this.sent.push({ buf, ep });
          return true;
        },
        close() {
          this.closed = true;
        },
        deliver(buf, src) {
          if (!this.closed) onMessage(buf, src, this);
        },
      };
      sockets.push(s);
      return s;
    },
    isPublic: isPublicIpv4,
  };
  const bp = new BirthdayPunch(host, {}, Math.random);
  const open = (buf: Buffer): DiscoMessage => {
    const m = openDisco(buf, k.theirKey);
    assert.ok(m, 'a probe the peer can open');
    return m;
  };
  return { clock, bp, k, mainSent, asked, proven, sockets, open, setTrusted: (t: boolean) => (trusted = t) };
}

const EASY_PUBLIC = { address: '7.0.113.11', port: 41641 };
const HARD_PUBLIC = { address: '7.0.113.12', port: 31337 };

test('the budget: ≥ 99 % per attempt over the masquerade range, 6 s of probes, backoff doubling to a cap', () => {
  const b = DEFAULT_BIRTHDAY_BUDGET;
  const range = b.portMax - b.portMin + 1;
  assert.equal(range, 64512, 'Linux masquerade random: ports 1024–65535');
  const miss = missProbability(b.hardSockets, b.easyProbes, range);
  assert.ok(miss < 0.01, `P(miss) = ${miss}`);
  assert.ok(missProbability(256, 600, range) > 0.05, 'half the probes would not do');
  assert.equal(attemptMs(b), 300 + 6000 + 1500);
  assert.deepEqual(
    [0, 1, 2, 3, 6, 10, 100].map((f) => backoffMs(b, f)),
    [0, 10_000, 20_000, 40_000, 300_000, 300_000, 300_000],
  );
});

test('easy side: probes at the rate, to distinct random ports of the peer’s public address, the budget and no more; then all cleared, and backoff', () => {
  const h = harness('easy', [{ address: '192.168.5.2', port: 41641 }, HARD_PUBLIC]);
  const { bp, k, clock } = h;
  bp.onCallMeMaybe(k.p, { mapping: 'hard', predict: false });
  assert.equal(bp.running(k.p), null, 'no request to predict: nothing starts');
  bp.onCallMeMaybe(k.p, { mapping: 'hard', predict: true });
  assert.equal(bp.running(k.p), 'easy');
  assert.deepEqual(h.asked, [{ mapping: 'easy', predict: true }], 'the peer is told we started');
  clock.advance(DEFAULT_BIRTHDAY_BUDGET.easyStartDelayMs - 1);
  assert.equal(h.mainSent.length, 0, 'the hard side gets time to open its mappings first');
  clock.advance(attemptMs(bp.budget) - clock.now());
  assert.equal(h.mainSent.length, 1200, 'the budget, no more');
  const ports = new Set(h.mainSent.map((s) => s.ep.port));
  assert.equal(ports.size, 1200, 'each port once');
  assert.ok(
    h.mainSent.every((s) => s.ep.address === HARD_PUBLIC.address && s.ep.port >= 1024 && s.ep.port <= 65535),
    'only the public address, in range',
  );
  const t0 = h.mainSent[0]!.at;
  for (let w = t0; w < t0 + 6000; w += 250) {
    const inWindow = h.mainSent.filter((s) => s.at >= w && s.at < w + 1000).length;
    assert.ok(inWindow <= 202, `at most 200 a second (+ a tick's rounding): ${inWindow} from ${w}`);
  }
  const last = h.mainSent.at(-1)!.at - t0;
  assert.ok(last >= 5900 && last <= 6100, `1,200 at 200/s take 6 s: ${last}`);
  assert.ok(
    h.mainSent.every((s) => s.buf.length === 124),
    'each a 124-byte disco ping',
  );
  assert.equal(h.open(h.mainSent[0]!.buf).type, 'ping');
  assert.equal(bp.running(k.p), null, 'the attempt ended');
  assert.equal(bp.stats.failures, 1);
  assert.equal(clock.live.size, 0, 'no timer left');
  assert.deepEqual(bp.stats.last, { role: 'easy', result: 'failed', ms: attemptMs(bp.budget), probes: 1200, bytes: 1200 * 124, port: null });

  // backoff: the peer asking again at once starts nothing; after 10 s it does, and after a second failure 20 s
  const failedAt = clock.now();
  bp.onCallMeMaybe(k.p, { mapping: 'hard', predict: true });
  assert.equal(bp.running(k.p), null, 'within the backoff: refused');
  clock.advance(failedAt + 10_000 - clock.now() - 1);
  bp.onCallMeMaybe(k.p, { mapping: 'hard', predict: true });
  assert.equal(bp.running(k.p), null);
  clock.advance(1);
  bp.onCallMeMaybe(k.p, { mapping: 'hard', predict: true });
  assert.equal(bp.running(k.p), 'easy');
  clock.advance(attemptMs(bp.budget));
  assert.equal(bp.stats.failures, 2);
  clock.advance(19_999);
  bp.onCallMeMaybe(k.p, { mapping: 'hard', predict: true });
  assert.equal(bp.running(k.p), null, 'the second wait is 20 s');
  clock.advance(1);
  bp.onCallMeMaybe(k.p, { mapping: 'hard', predict: true });
  assert.equal(bp.running(k.p), 'easy');
  bp.stop();
  assert.equal(clock.live.size, 0, 'stop clears everything');
});

test('easy side: the first pong to a probe wins and probing stops at once; unknown pongs are not ours', () => {
  const h = harness('easy', [HARD_PUBLIC]);
  const { bp, k, clock } = h;
  bp.onCallMeMaybe(k.p, { mapping: 'hard', predict: true });
  clock.advance(1300);
  const n = h.mainSent.length;
  assert.ok(n > 150 && n < 250, `a second of probes: ${n}`);
  const hit = h.mainSent[50]!;
  const m = h.open(hit.buf);
  assert.equal(bp.onMainPong(k.p, Buffer.alloc(12, 7), hit.ep), false, 'a txid of no probe');
  assert.equal(bp.onMainPong(k.p, m.type === 'ping' ? m.txid : Buffer.alloc(0), hit.ep), true);
  assert.deepEqual(h.proven, [{ ep: hit.ep, sock: null }], 'the hard side’s port is the path');
  clock.advance(10_000);
  assert.equal(h.mainSent.length, n, 'no probe after the win');
  assert.equal(clock.live.size, 0);
  assert.equal(bp.stats.wins, 1);
  assert.equal(bp.stats.last?.port, hit.ep.port);
});

test('hard side: 256 sockets each ping the peer’s public endpoint; a probe is answered; the pong wins, the rest close; on failure all close', async () => {
  const h = harness('hard', [{ address: '192.168.9.2', port: 41641 }, EASY_PUBLIC]);
  const { bp, k, clock } = h;
  bp.onCallMeMaybe(k.p, { mapping: 'easy', predict: false });
  bp.onRelayed(k.p);
  assert.equal(bp.running(k.p), null, 'relayed traffic must last relayedBeforeMs first');
  clock.advance(1000);
  bp.onRelayed(k.p);
  assert.equal(bp.running(k.p), 'hard');
  assert.deepEqual(h.asked, [{ mapping: 'hard', predict: true }], 'and asks the peer to probe');
  await new Promise((r) => setImmediate(r));
  assert.equal(h.sockets.length, 256);
  assert.ok(
    h.sockets.every((s) => s.sent.length === 1 && s.sent[0]!.ep.address === EASY_PUBLIC.address && s.sent[0]!.ep.port === EASY_PUBLIC.port),
    'one ping each, to the public endpoint only',
  );
  assert.equal(bp.stats.socketsOpen, 256);
  // the easy side's probe lands on socket 17: it answers with a pong and a ping of its own
  const s17 = h.sockets[17]!;
  const probe = sealDisco({ type: 'ping', txid: Buffer.alloc(12, 1), nodeKey: k.p.nodeKey }, k.theirDiscoPub, k.theirKey);
  s17.deliver(probe, EASY_PUBLIC);
  assert.deepEqual(
    s17.sent.slice(1).map((x) => h.open(x.buf).type),
    ['pong', 'ping'],
  );
  // a stranger's pong is ignored; the peer's pong to socket 17's ping wins
  const mine = h.open(s17.sent[0]!.buf);
  const txid = mine.type === 'ping' ? mine.txid : Buffer.alloc(0);
  const stranger = generatePrivateKey();
  s17.deliver(sealDisco({ type: 'pong', txid, src: EASY_PUBLIC }, publicKeyOf(stranger), boxKey(stranger, k.ourDiscoPub)), EASY_PUBLIC);
  assert.equal(h.proven.length, 0);
  h.sockets[18]!.deliver(sealDisco({ type: 'pong', txid, src: EASY_PUBLIC }, k.theirDiscoPub, k.theirKey), EASY_PUBLIC);
  assert.equal(h.proven.length, 0, 'socket 17’s txid on socket 18: no');
  s17.deliver(sealDisco({ type: 'pong', txid, src: EASY_PUBLIC }, k.theirDiscoPub, k.theirKey), EASY_PUBLIC);
  assert.deepEqual(h.proven, [{ ep: EASY_PUBLIC, sock: s17 }]);
  assert.equal(h.sockets.filter((s) => !s.closed).length, 1, 'only the winner stays open');
  assert.equal(bp.socketOf(k.p), s17);
  assert.equal(bp.stats.socketsOpen, 1);
  assert.equal(clock.live.size, 0);
  bp.forget(k.p);
  assert.ok(s17.closed, 'the peer went away: its socket closes');
  assert.equal(bp.stats.socketsOpen, 0);

  // a failed attempt closes all 256
  const f = harness('hard', [EASY_PUBLIC]);
  f.bp.onCallMeMaybe(f.k.p, { mapping: 'easy', predict: true });
  await new Promise((r) => setImmediate(r));
  assert.equal(f.sockets.length, 256);
  f.clock.advance(attemptMs(f.bp.budget));
  assert.ok(
    f.sockets.every((s) => s.closed),
    'every socket closed',
  );
  assert.equal(f.bp.stats.socketsOpen, 0);
  assert.equal(f.clock.live.size, 0, 'no timer left');
  assert.equal(f.bp.stats.last?.result, 'failed');
});

test('no prediction between two hard NATs, two easy ones, or without the peer’s public address', () => {
  for (const [ours, theirs] of [
    ['hard', 'hard'],
    ['easy', 'easy'],
  ] as const) {
    const h = harness(ours, [EASY_PUBLIC, HARD_PUBLIC]);
    h.bp.onCallMeMaybe(h.k.p, { mapping: theirs, predict: true });
    assert.equal(h.bp.running(h.k.p), null, `${ours} ↔ ${theirs}`);
  }
  const lan = harness('easy', [{ address: '10.1.2.3', port: 41641 }]);
  lan.bp.onCallMeMaybe(lan.k.p, { mapping: 'hard', predict: true });
  assert.equal(lan.bp.running(lan.k.p), null, 'only private addresses: nothing to probe');
  assert.deepEqual(
    ['7.0.113.5', '8.8.8.8', '10.0.0.1', '192.168.1.1', '172.20.0.1', '100.100.1.1', '127.0.0.1', '169.254.1.1', '224.0.0.1', '0.1.2.3', 'x'].map(isPublicIpv4),
    [true, true, false, false, false, false, false, false, false, false, false],
  );
});

test('a per-peer socket on loopback sends and receives, and once closed refuses to send without throwing', async () => {
  const got: { buf: Buffer; src: Endpoint }[] = [];
  const a = await openPeerSocket((buf, src) => got.push({ buf, src }), { address: '127.0.0.1' });
  const b = await openPeerSocket(() => {}, { address: '127.0.0.1' });
  try {
    assert.ok(a.localPort > 0 && a.localPort !== b.localPort);
    assert.equal(b.send(Buffer.from('hello'), { address: '127.0.0.1', port: a.localPort }), true);
    await until(() => got.length === 1, 5000);
    assert.equal(got[0]?.buf.toString(), 'hello');
    assert.deepEqual(got[0]?.src, { address: '127.0.0.1', port: b.localPort });
    assert.equal(b.send(Buffer.from('x'), { address: '::1', port: a.localPort }), false, 'IPv4 only');
    b.close();
    assert.equal(b.closed, true);
    assert.equal(b.send(Buffer.from('late'), { address: '127.0.0.1', port: a.localPort }), false);
    b.close();
  } finally {
    a.close();
    b.close();
  }
});

/** Drops what arrives from one source port: the easy NAT's filter, which lets in only ports it sent to. */
class FilterBind implements NetBind {
  blockedPort = -1;
  constructor(private readonly inner: UdpBind) {}
  open(port: number, on: (buf: Buffer, src: Endpoint) => void): Promise<number> {
    return this.inner.open(port, (buf, src) => {
      if (src.port !== this.blockedPort) on(buf, src);
    });
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  send(buf: Buffer, ep: Endpoint): boolean {
    return this.inner.send(buf, ep);
  }
  setMark(): void {}
}

test('two engines on loopback: the hard side’s winning socket carries the peer’s WireGuard traffic both ways, and closes when the peer goes', async () => {
  const hardPorts: number[] = [];
  let draw = 0;
  // the easy side's random source picks the hard side's sockets' ports: on loopback there is no NAT
  // to make mappings, and no random port of this host is probed
  const rand = (): number => {
    const port = hardPorts[draw++ % Math.max(1, hardPorts.length)] ?? 65535;
    return (port - 1024 + 0.5) / 64512;
  };
  const budget = { hardSockets: 8, easyProbes: 8, easyStartDelayMs: 300, relayedBeforeMs: 0 };
  type Node = { dev: Device; paths: PathManager; nodePub: Buffer; discoPub: Buffer; port: number; filter: FilterBind; got: Buffer[] };
  const byKey = new Map<string, Node>();
  const relay = (from: () => Buffer): RelayPaths => ({
    send: (_r, dst, pkt) => {
      const copy = Buffer.from(pkt);
      setImmediate(() => byKey.get(dst.toString('hex'))?.paths.receiveRelayed('r1', from(), copy));
      return true;
    },
    connected: () => true,
  });
  const make = async (mapping: NatMapping): Promise<Node> => {
    const nodeKey = generatePrivateKey();
    const disco = generatePrivateKey();
    const dev = new Device();
    dev.setPrivateKey(nodeKey);
    const filter = new FilterBind(new UdpBind());
    let port = 0;
    const paths = new PathManager(dev, filter, { privateKey: disco, publicKey: publicKeyOf(disco) }, publicKeyOf(nodeKey), {
      // short heartbeats, so that a dead path is noticed within the test's deadline
      timers: { heartbeatMs: 200, trustMs: 500 },
      relay: relay(() => publicKeyOf(nodeKey)),
      localEndpoints: () => [{ address: '127.0.0.1', port }],
      natMapping: () => mapping,
      birthday: {
        budget,
        rand,
        isPublic: () => true,
        openSocket: async (onMessage) => {
          const s = await openPeerSocket(onMessage, { address: '127.0.0.1' });
          if (mapping === 'hard') hardPorts.push(s.localPort);
          return s;
        },
      },
    });
    const got: Buffer[] = [];
    dev.attachTun((p) => (got.push(Buffer.from(p)), true));
    port = await dev.attachBind(new PathBind(filter, paths), 0).then(() => dev.port);
    const n = { dev, paths, nodePub: publicKeyOf(nodeKey), discoPub: publicKeyOf(disco), port, filter, got };
    byKey.set(n.nodePub.toString('hex'), n);
    return n;
  };
  const hard = await make('hard');
  const easy = await make('easy');
  try {
    // the easy node's NAT lets nothing in from the hard node's main socket (its mapping towards us is unknown to us)
    easy.filter.blockedPort = hard.port;
    for (const [me, peer, ip] of [
      [hard, easy, '10.9.0.2'],
      [easy, hard, '10.9.0.1'],
    ] as const) {
      me.dev.addPeer(peer.nodePub);
      await me.dev.applySet({
        replacePeers: false,
        peers: [{ publicKey: peer.nodePub, remove: false, updateOnly: true, replaceAllowedIps: true, allowedIps: [{ address: ip, bits: 32, family: 4 }] }],
      });
      me.paths.setPeers([{ nodeKey: peer.nodePub, discoKey: peer.discoPub, candidates: [{ address: '127.0.0.1', port: peer.port }], homeRelay: 'r1' }]);
    }
    // traffic over the relay starts it
    for (let i = 1; i <= 3; i++) hard.dev.sendPackets([ipv4Packet('10.9.0.1', '10.9.0.2', 100, i)]);
    await until(() => hard.paths.pathOf(easy.nodePub).kind === 'direct' && easy.paths.pathOf(hard.nodePub).kind === 'direct', 8000);
    const hp = hard.paths.pathOf(easy.nodePub);
    const ep = easy.paths.pathOf(hard.nodePub);
    assert.equal(hp.kind === 'direct' && hp.trusted, true, `hard → easy: ${JSON.stringify(hp)}`);
    assert.equal(ep.kind, 'direct');
    const winner = ep.kind === 'direct' ? ep.endpoint.port : -1;
    assert.ok(hardPorts.includes(winner), `the easy side reaches one of the hard side's sockets (${winner}), not its main port ${hard.port}`);
    assert.equal(hard.paths.birthdayStats.socketsOpen, 1, 'the other sockets closed');
    assert.equal(hard.paths.birthdayStats.wins + easy.paths.birthdayStats.wins >= 1, true);

    // WireGuard both ways over it, nothing by relay
    const relayedBefore = hard.paths.traffic.relaySentPackets + easy.paths.traffic.relaySentPackets;
    const eGot = easy.got.length;
    const hGot = hard.got.length;
    for (let i = 10; i < 20; i++) {
      hard.dev.sendPackets([ipv4Packet('10.9.0.1', '10.9.0.2', 600, i)]);
      easy.dev.sendPackets([ipv4Packet('10.9.0.2', '10.9.0.1', 600, i)]);
    }
    await until(() => easy.got.length >= eGot + 10 && hard.got.length >= hGot + 10, 5000);
    assert.ok(easy.got.length >= eGot + 10, 'hard → easy delivered');
    assert.ok(hard.got.length >= hGot + 10, 'easy → hard delivered');
    assert.equal(hard.paths.traffic.relaySentPackets + easy.paths.traffic.relaySentPackets, relayedBefore, 'none of it relayed');
    assert.ok(hard.paths.traffic.directReceivedPackets >= 10, 'received on the per-peer socket, counted as direct');

    // the predicted path dies (the easy side's NAT forgets the port): heartbeats go unanswered, the socket closes
    easy.filter.blockedPort = winner;
    await until(() => hard.paths.birthdayStats.socketsOpen === 0, 5000);
    assert.equal(hard.paths.birthdayStats.socketsOpen, 0, 'the dead path’s socket closed');
    assert.notEqual(hard.paths.pathOf(easy.nodePub).kind, 'direct', 'and the peer is no longer sent to through it');
    hard.paths.setPeers([]);
    assert.equal(hard.paths.birthdayStats.socketsOpen, 0, 'nothing open once the peer left');
  } finally {
    for (const n of [hard, easy]) {
      n.paths.stop();
      await n.dev.close();
    }
  }
});

test('call-me-maybe carries the NAT mapping in the version byte’s flags: same length, older peers (which ignore that byte) parse it', async () => {
  const { decodeBody } = await import('../../src/nat/disco.js');
  const key = boxKey(generatePrivateKey(), publicKeyOf(generatePrivateKey()));
  const pub = publicKeyOf(generatePrivateKey());
  const endpoints = [EASY_PUBLIC, { address: '192.168.1.2', port: 41641 }];
  const plain = openDiscoBody(sealDisco({ type: 'callMeMaybe', endpoints }, pub, key), key);
  for (const nat of [
    { mapping: 'hard', predict: true },
    { mapping: 'easy', predict: false },
    { mapping: 'easy', predict: true },
  ] as const) {
    const body = openDiscoBody(sealDisco({ type: 'callMeMaybe', endpoints, nat }, pub, key), key);
    assert.equal(body.length, plain.length);
    assert.ok(body.subarray(2).equals(plain.subarray(2)) && body[0] === plain[0], 'only the version byte differs');
    assert.equal(body[1]! & 0x0f, 0, 'the version itself is unchanged');
    assert.deepEqual(decodeBody(body), { type: 'callMeMaybe', endpoints, nat });
  }
  assert.deepEqual(decodeBody(plain), { type: 'callMeMaybe', endpoints }, 'an older peer’s call-me-maybe: no hint');
});

/** The sealed box's plaintext (the body), with the key both sides share. */
function openDiscoBody(pkt: Buffer, key: Uint8Array): Buffer {
  const plain = openBox(key, pkt.subarray(6 + 32));
  assert.ok(plain);
  return Buffer.from(plain);
}
