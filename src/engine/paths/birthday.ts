// Port prediction between a hard NAT (a new random public port per
// destination) and an easy one (one public port for every destination), the
// "birthday paradox" way: the hard side opens many sockets and pings the easy
// side's public address from each, which makes as many mappings on its NAT;
// the easy side pings random ports of the hard side's public address at a
// bounded rate. A probe that lands on one of those mappings reaches its socket
// through the hard NAT, and passes the easy NAT because the probe itself
// opened it towards that port. The first authenticated pong wins: on the hard
// side its socket becomes the peer's direct path (a per-peer socket, carried
// by path selection), on the easy side the hard side's port does; everything
// else closes at once. Budget, pace, backoff and the arithmetic are in
// birthday-budget.ts and docs/nat.md.
//
// Both sides start only when they agree over the relay: call-me-maybe carries
// each side's NAT mapping, and a side with relayed traffic and no direct path
// asks with `predict`. The peer is hostile input, so an attempt is bounded in
// packets and time, targets only the peer's own public addresses, and the
// next one waits out a backoff, however often the peer asks.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Endpoint } from '../conn/endpoint.js';
import { discoSender, isDisco, openDisco, TXID_LEN, type DiscoMessage, type NatHint } from '../../nat/disco.js';
import { attemptMs, backoffMs, DEFAULT_BIRTHDAY_BUDGET, type BirthdayBudget } from './birthday-budget.js';
import type { PeerSocket, PeerSocketOpener } from './peer-socket.js';
import type { PeerPaths } from './types.js';

export type NatMapping = NatHint['mapping'];

/** A txid of ours: the attempt's random tag (8 bytes) ‖ the probe's or socket's number (4 bytes). */
const TAG_LEN = 8;
/** The easy side sends its due probes on this tick (200/s: two per tick). */
const PROBE_TICK_MS = 10;
/** A socket answers the peer's pings with a ping of its own at most this often (the ping back of probe.ts). */
const SOCKET_PING_BACK_MIN_MS = 250;
/** Draws of a random port before taking the next free one instead. */
const PORT_DRAWS = 16;
/** At most this many of the peer's addresses are targets: its candidates come from the peer, so they are bounded. */
const MAX_TARGETS = 2;

/** What port prediction needs from path selection. */
export interface BirthdayHost {
  clock: Clock;
  /** our node key, which every ping carries */
  nodeKey: Buffer;
  /** our NAT's mapping as netcheck last measured it; null: unknown or no NAT */
  ourMapping(): NatMapping | null;
  /** seals a disco message for the peer */
  seal(p: PeerPaths, m: DiscoMessage): Buffer;
  /** sends on the main socket */
  sendMain(buf: Buffer, ep: Endpoint): boolean;
  /** call-me-maybe over the relay, with our hint */
  callMeMaybe(p: PeerPaths, hint: NatHint): void;
  /** the peer has a trusted direct path */
  trusted(p: PeerPaths): boolean;
  /** a pong proved `ep`: through `sock` (the hard side) or through the main socket (null, the easy side) */
  proven(p: PeerPaths, ep: Endpoint, sock: PeerSocket | null, latencyMs: number): void;
  /** what a won socket receives: disco and WireGuard, for path selection and the device */
  deliver(p: PeerPaths, buf: Buffer, src: Endpoint, sock: PeerSocket): void;
  /** opens one per-peer socket */
  openSocket: PeerSocketOpener;
  /** an address worth probing: public IPv4 (the lab's and the internet's), not a LAN or loopback one */
  isPublic(address: string): boolean;
  log?(msg: string): void;
}

export interface BirthdayStats {
  attempts: number;
  wins: number;
  failures: number;
  /** disco pings sent by prediction (both roles), and their UDP payload bytes */
  probesSent: number;
  probeBytes: number;
  socketsOpened: number;
  socketOpenErrors: number;
  /** per-peer sockets open now (attempts in flight and won paths) */
  socketsOpen: number;
  /** the last attempt that ended */
  last: { role: NatMapping; result: 'won' | 'failed'; ms: number; probes: number; bytes: number; port: number | null } | null;
}

interface Attempt {
  role: NatMapping;
  tag: Buffer;
  startedMs: number;
  timers: Set<unknown>;
  /** hard side: the sockets, by number (null until open, or after closing) */
  sockets: (PeerSocket | null)[];
  lastPingBackMs: Map<PeerSocket, number>;
  /** when each probe (easy) or socket's ping (hard) left */
  sentMs: number[];
  targets: Endpoint[];
  /** easy side: the ports probed so far */
  ports: Set<number>;
  probes: number;
  bytes: number;
  probeStartMs: number;
  over: boolean;
}

interface PeerPrediction {
  peer: PeerPaths;
  theirMapping: NatMapping | null;
  failures: number;
  nextAllowedMs: number;
  relayedSinceMs: number | null;
  /** when we last asked a peer whose mapping we did not know */
  askedMs: number;
  attempt: Attempt | null;
  /** hard side: the socket that won, carrying the peer's direct path */
  won: PeerSocket | null;
}

export class BirthdayPunch {
  readonly budget: BirthdayBudget;
  readonly stats: BirthdayStats = {
    attempts: 0,
    wins: 0,
    failures: 0,
    probesSent: 0,
    probeBytes: 0,
    socketsOpened: 0,
    socketOpenErrors: 0,
    socketsOpen: 0,
    last: null,
  };
  private readonly peers = new Map<string, PeerPrediction>();

  constructor(
    private readonly host: BirthdayHost,
    budget: Partial<BirthdayBudget> = {},
    /** uniform in [0, 1): injectable so tests pick the ports */
    private readonly rand: () => number = Math.random,
  ) {
    this.budget = { ...DEFAULT_BIRTHDAY_BUDGET, ...budget };
  }

  private now(): number {
    return this.host.clock.now();
  }

  private state(p: PeerPaths): PeerPrediction {
    let s = this.peers.get(p.hex);
    if (!s || s.peer !== p) {
      if (s) this.forget(s.peer);
      s = { peer: p, theirMapping: null, failures: 0, nextAllowedMs: -Infinity, relayedSinceMs: null, askedMs: -Infinity, attempt: null, won: null };
      this.peers.set(p.hex, s);
    }
    return s;
  }

  /** Our hint for an ordinary call-me-maybe (no request to predict). */
  hint(): NatHint | undefined {
    const m = this.host.ourMapping();
    return m ? { mapping: m, predict: false } : undefined;
  }

  /** The peer's call-me-maybe: remember its NAT, and when it asks, start our half (and tell it we did). */
  onCallMeMaybe(p: PeerPaths, nat: NatHint | undefined): void {
    if (!nat) return;
    const s = this.state(p);
    s.theirMapping = nat.mapping;
    if (!nat.predict || s.attempt) return;
    if (this.start(s)) this.host.callMeMaybe(p, { mapping: s.attempt!.role, predict: true });
  }

  /** A WireGuard packet to the peer went through the relay: after relayedBeforeMs without a direct path, ask for prediction. */
  onRelayed(p: PeerPaths): void {
    const s = this.peers.get(p.hex) ?? this.state(p);
    if (s.attempt || s.won) return;
    const now = this.now();
    if (s.relayedSinceMs === null) {
      s.relayedSinceMs = now;
      return;
    }
    if (now - s.relayedSinceMs < this.budget.relayedBeforeMs || now < s.nextAllowedMs || this.host.trusted(p)) return;
    const ours = this.host.ourMapping();
    if (!ours) return;
    if (s.theirMapping === null) {
      // an old peer, or its netcheck had not finished: ask at most once per backoffBaseMs; its answer (a
      // call-me-maybe with its mapping and `predict`) starts our half
      if (now - s.askedMs < this.budget.backoffBaseMs) return;
      s.askedMs = now;
      this.host.callMeMaybe(p, { mapping: ours, predict: true });
      return;
    }
    if (this.start(s)) this.host.callMeMaybe(p, { mapping: ours, predict: true });
  }

  /** Starts our half when the two NATs are one hard and one easy, nothing runs, and the backoff allows. */
  private start(s: PeerPrediction): boolean {
    const ours = this.host.ourMapping();
    const now = this.now();
    if (!ours || !s.theirMapping || ours === s.theirMapping || s.attempt || s.won || now < s.nextAllowedMs || this.host.trusted(s.peer)) return false;
    const targets = this.targets(s.peer, ours);
    if (targets.length === 0) return false;
    const tag = randomBytes(TAG_LEN);
    const a: Attempt = {
      role: ours,
      tag,
      startedMs: now,
      timers: new Set(),
      sockets: [],
      lastPingBackMs: new Map(),
      sentMs: [],
      targets,
      ports: new Set(),
      probes: 0,
      bytes: 0,
      probeStartMs: now + this.budget.easyStartDelayMs,
      over: false,
    };
    s.attempt = a;
    this.stats.attempts++;
    this.host.log?.(`port prediction with ${s.peer.hex.slice(0, 8)}…: ${ours} side, towards ${targets.map((t) => `${t.address}:${t.port}`).join(', ')}`);
    this.after(a, attemptMs(this.budget), () => this.finish(s, null, null));
    if (ours === 'hard') void this.openSockets(s, a);
    else this.after(a, this.budget.easyStartDelayMs, () => this.probeTick(s, a));
    return true;
  }

  /** Hard side: the easy peer's public endpoints. Easy side: the hard peer's public addresses (ports are what we guess). */
  private targets(p: PeerPaths, role: NatMapping): Endpoint[] {
    const out: Endpoint[] = [];
    const seen = new Set<string>();
    for (const c of p.candidates.values()) {
      const a = c.ep.address;
      if (a.includes(':') || !this.host.isPublic(a)) continue;
      const key = role === 'hard' ? `${a}:${c.ep.port}` : a;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ address: a, port: role === 'hard' ? c.ep.port : 0 });
      if (out.length >= MAX_TARGETS) break;
    }
    return out;
  }

  private after(a: Attempt, ms: number, fn: () => void): void {
    const h = this.host.clock.setTimeout(() => {
      a.timers.delete(h);
      if (!a.over) fn();
    }, ms);
    a.timers.add(h);
  }

  private txid(a: Attempt, n: number): Buffer {
    const t = Buffer.alloc(TXID_LEN);
    a.tag.copy(t);
    t.writeUInt32BE(n >>> 0, TAG_LEN);
    return t;
  }

  /** The probe or socket number a txid of this attempt carries, or -1. */
  private numberOf(a: Attempt, txid: Buffer): number {
    return txid.length === TXID_LEN && txid.subarray(0, TAG_LEN).equals(a.tag) ? txid.readUInt32BE(TAG_LEN) : -1;
  }

  private ping(s: PeerPrediction, a: Attempt, n: number): Buffer {
    a.sentMs[n] = this.now();
    return this.host.seal(s.peer, { type: 'ping', txid: this.txid(a, n), nodeKey: this.host.nodeKey });
  }

  private count(a: Attempt, bytes: number): void {
    a.probes++;
    a.bytes += bytes;
    this.stats.probesSent++;
    this.stats.probeBytes += bytes;
  }

  /** Hard side: opens the sockets, each pinging the easy side's public endpoints as soon as it is bound. */
  private async openSockets(s: PeerPrediction, a: Attempt): Promise<void> {
    const opens: Promise<void>[] = [];
    for (let i = 0; i < this.budget.hardSockets; i++) {
      a.sockets.push(null);
      opens.push(
        this.host
          .openSocket((buf, src, sock) => this.onSocket(s, buf, src, sock))
          .then(
            (sock) => {
              this.stats.socketsOpened++;
              this.stats.socketsOpen++;
              if (a.over) return this.closeSocket(sock);
              a.sockets[i] = sock;
              const pkt = this.ping(s, a, i);
              for (const t of a.targets) if (sock.send(pkt, t)) this.count(a, pkt.length);
            },
            () => {
              this.stats.socketOpenErrors++;
            },
          ),
      );
    }
    await Promise.all(opens);
  }

  private closeSocket(sock: PeerSocket): void {
    if (sock.closed) return;
    sock.close();
    this.stats.socketsOpen--;
  }

  /** Easy side: the probes due by now at probesPerSecond, each to a new random port, until the budget is spent or a path is proven. */
  private probeTick(s: PeerPrediction, a: Attempt): void {
    if (this.host.trusted(s.peer)) return this.finish(s, null, null, 'other');
    const b = this.budget;
    const due = Math.min(b.easyProbes, Math.floor(((this.now() - a.probeStartMs) * b.probesPerSecond) / 1000) + 1);
    const range = b.portMax - b.portMin + 1;
    while (a.probes < due && a.ports.size < range) {
      let port = this.randomPort(b.portMin, range);
      // a port probed already: draw again a few times, then take the next free one (a bad random source cannot stall us)
      for (let tries = 0; a.ports.has(port) && tries < PORT_DRAWS; tries++) port = this.randomPort(b.portMin, range);
      while (a.ports.has(port)) port = port >= b.portMax ? b.portMin : port + 1;
      a.ports.add(port);
      const t = a.targets[a.probes % a.targets.length]!;
      const pkt = this.ping(s, a, a.probes);
      if (this.host.sendMain(pkt, { address: t.address, port })) this.count(a, pkt.length);
      else a.probes++;
    }
    // after the last probe, the attempt's own deadline (graceMs later) ends it unless a pong comes first
    if (a.probes < b.easyProbes && a.ports.size < range) this.after(a, PROBE_TICK_MS, () => this.probeTick(s, a));
  }

  private randomPort(min: number, range: number): number {
    const r = this.rand();
    return min + Math.min(range - 1, Math.max(0, Math.floor((Number.isFinite(r) ? r : 0) * range)));
  }

  /** Easy side: a pong on the main socket that path selection did not send for; true when it was one of our probes. */
  onMainPong(p: PeerPaths, txid: Buffer, src: Endpoint): boolean {
    const s = this.peers.get(p.hex);
    const a = s?.attempt;
    if (!s || !a || a.role !== 'easy') return false;
    const n = this.numberOf(a, txid);
    if (n < 0 || n >= a.probes) return false;
    this.host.proven(p, src, null, this.now() - (a.sentMs[n] ?? this.now()));
    this.finish(s, null, src);
    return true;
  }

  /** Hard side: a datagram on one of our sockets. */
  private onSocket(s: PeerPrediction, buf: Buffer, src: Endpoint, sock: PeerSocket): void {
    if (s.won === sock) return this.host.deliver(s.peer, buf, src, sock);
    const a = s.attempt;
    if (!a || a.over || !isDisco(buf) || !discoSender(buf).equals(s.peer.discoKey)) return;
    const m = openDisco(buf, s.peer.sharedKey);
    if (!m) return;
    if (m.type === 'ping' && m.nodeKey.equals(s.peer.nodeKey)) {
      // a probe found this socket: answer it, and ping back so that our side sees a pong of its own
      const pong = this.host.seal(s.peer, { type: 'pong', txid: m.txid, src });
      if (sock.send(pong, src)) this.count(a, pong.length);
      const last = a.lastPingBackMs.get(sock) ?? -Infinity;
      const i = a.sockets.indexOf(sock);
      if (i >= 0 && this.now() - last >= SOCKET_PING_BACK_MIN_MS) {
        a.lastPingBackMs.set(sock, this.now());
        const pkt = this.ping(s, a, i);
        if (sock.send(pkt, src)) this.count(a, pkt.length);
      }
    } else if (m.type === 'pong') {
      const n = this.numberOf(a, m.txid);
      if (n < 0 || a.sockets[n] !== sock) return;
      s.won = sock;
      this.host.proven(s.peer, src, sock, this.now() - (a.sentMs[n] ?? this.now()));
      this.finish(s, sock, src);
    }
  }

  /**
   * Ends the attempt: timers cleared, every socket but the winner closed. `won` is the winning socket (hard side),
   * `wonEp` the address that answered; both null otherwise. `end`: a direct path came some other way, or the peer went away.
   */
  private finish(s: PeerPrediction, won: PeerSocket | null, wonEp: Endpoint | null, end?: 'other' | 'cancelled'): void {
    const a = s.attempt;
    if (!a || a.over) return;
    a.over = true;
    s.attempt = null;
    for (const h of a.timers) this.host.clock.clearTimeout(h);
    a.timers.clear();
    for (const sock of a.sockets) if (sock && sock !== won) this.closeSocket(sock);
    a.sockets.length = 0;
    a.lastPingBackMs.clear();
    const now = this.now();
    const ok = wonEp !== null || end === 'other';
    if (ok) {
      s.failures = 0;
      // even after a success, the next attempt waits: a peer that keeps killing the path cannot make us probe in a loop
      s.nextAllowedMs = now + this.budget.backoffBaseMs;
      if (wonEp) this.stats.wins++;
    } else if (end !== 'cancelled') {
      s.failures++;
      this.stats.failures++;
      s.nextAllowedMs = now + backoffMs(this.budget, s.failures);
    }
    s.relayedSinceMs = null;
    if (end === 'cancelled') return;
    this.stats.last = { role: a.role, result: ok ? 'won' : 'failed', ms: now - a.startedMs, probes: a.probes, bytes: a.bytes, port: wonEp?.port ?? null };
    this.host.log?.(
      `port prediction with ${s.peer.hex.slice(0, 8)}…: ${ok ? `direct${wonEp ? ` via ${wonEp.address}:${wonEp.port}` : ''}` : 'no shared port'} ` +
        `after ${Math.round(now - a.startedMs)} ms, ${a.probes} packets, ${a.bytes} bytes` +
        (ok ? '' : `; next attempt in ${Math.round((s.nextAllowedMs - now) / 1000)} s at the earliest`),
    );
  }

  /** The won socket of a peer, if any. */
  socketOf(p: PeerPaths): PeerSocket | null {
    return this.peers.get(p.hex)?.won ?? null;
  }

  /** The peer's direct path is dead, or it was replaced: close its socket. */
  release(p: PeerPaths): void {
    const s = this.peers.get(p.hex);
    if (!s?.won) return;
    this.closeSocket(s.won);
    s.won = null;
  }

  /** Each heartbeat: a peer with a trusted direct path stops counting relayed time. */
  beat(p: PeerPaths): void {
    const s = this.peers.get(p.hex);
    if (s && this.host.trusted(p)) s.relayedSinceMs = null;
  }

  /** The peer went away: its attempt ends and its socket closes. */
  forget(p: PeerPaths): void {
    const s = this.peers.get(p.hex);
    if (!s) return;
    this.finish(s, null, null, 'cancelled');
    this.release(p);
    this.peers.delete(p.hex);
  }

  /** Path selection stops: everything ends. */
  stop(): void {
    for (const s of [...this.peers.values()]) this.forget(s.peer);
  }

  /** tests: whether an attempt with the peer is running */
  running(p: PeerPaths): NatMapping | null {
    return this.peers.get(p.hex)?.attempt?.role ?? null;
  }
}

/** Public IPv4: not this-network, private, shared (CGNAT, also the mesh's range), loopback, link-local, multicast or reserved. */
export function isPublicIpv4(address: string): boolean {
  const o = address.split('.').map(Number);
  if (o.length !== 4 || o.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return false;
  const [a, b] = o as [number, number, number, number];
  if (a === 0 || a === 10 || a === 127 || a >= 224) return false;
  if (a === 100 && b >= 64 && b < 128) return false;
  if (a === 169 && b === 254) return false;
  if (a === 172 && b >= 16 && b < 32) return false;
  if (a === 192 && b === 168) return false;
  return true;
}
