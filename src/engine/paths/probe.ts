// Probing: disco pings and pongs, heartbeats and call-me-maybe. Pings go to a
// peer's direct candidates over the UDP bind and to its home relay; a pong
// from the address (or relay) the ping went to measures that path and hands
// it to the choice (choose.ts). A peer's ping from an address with no proven
// path gets a ping back: our earlier ping may have died at the peer's NAT
// before the peer's own packet opened it (docs/nat.md). When each attempt
// starts and which probes it sends is punch.ts's decision: TTL-limited openers
// and a flagged call-me-maybe first, full pings once the peer's call-me-maybe
// says its NAT is open, and a quiet spell after a failure.
// A path in use is probed sooner than the next heartbeat when something hints
// that it died: data sent to the peer with nothing back for silenceMs, or the
// peer's ping arriving from an address it never used (its NAT gave it a new
// mapping). A ping to it unanswered past a few round trips makes it suspect
// (choose.ts): the relay carries copies of its traffic, and a candidate that
// answers meanwhile takes over at once.
import { randomBytes } from 'node:crypto';
import { discoSender, openDisco, sealDisco, TXID_LEN, type DiscoMessage, type NatHint } from '../../nat/disco.js';
import type { Clock } from '../clock.js';
import type { NetBind } from '../conn/bind.js';
import { endpointEquals, endpointKey, relayRegionOf, type Endpoint } from '../conn/endpoint.js';
import type { PathChoice } from './choose.js';
import type { PathTable } from './table.js';
import type { Candidate, PathTimers, PeerPaths, PingResult, RelayPaths } from './types.js';
import type { PeerSocket } from './peer-socket.js';
import { attemptStarted, initiatesNext, onCallMeMaybe, OPENER_TTL, PUNCH_ATTEMPT_MS, PUNCH_BACKOFF_MS, punchBeat, punchSucceeded, quiet } from './punch.js';

/**
 * The first ping back after one of our own probes goes at once, however soon
 * the peer's ping came (the race is usually tens of ms); further ones at most
 * this often per address.
 */
const PING_BACK_MIN_MS = 250;

interface PendingPing {
  peer: PeerPaths;
  /** null: sent through the relay */
  cand: Candidate | null;
  region: string | null;
  sentMs: number;
  onPong?: (r: PingResult) => void;
}

export interface DiscoStats {
  rx: number;
  tx: number;
  dropped: { unknownSender: number; badBox: number; unknownTx: number };
  callMeMaybeSent: number;
  callMeMaybeReceived: number;
  /** TTL-limited pings that open our NAT towards a peer (punch.ts) */
  openersSent: number;
  /** failed hole-punching attempts, each followed by a quiet spell when the peer backs off too */
  punchFailures: number;
  /** times a ping to a path in use went unanswered past lostAfterMs (the path became suspect) */
  suspectPaths: number;
  /** of those, times another candidate that had answered took over at once */
  suspectSwitches: number;
  /** pings to a path in use sent early: data with no reply for silenceMs, or the peer pinging from a new address */
  earlyProbes: number;
}

/** What probing sends with and for whom. */
export interface ProberParts {
  clock: Clock;
  timers: PathTimers;
  table: PathTable;
  choice: PathChoice;
  /** disco and direct pings leave on the UDP socket itself (openers with their own TTL where the bind can) */
  udp: Pick<NetBind, 'send' | 'sendTtl'>;
  relay?: RelayPaths;
  disco: { privateKey: Buffer; publicKey: Buffer };
  /** our node key, which every ping carries */
  nodeKey: Buffer;
  /** our own endpoints, for call-me-maybe */
  localEndpoints?: () => Endpoint[];
  /** port prediction (birthday.ts): our NAT hint for call-me-maybe, the peer's, and pongs to its probes */
  natHint?: () => NatHint | undefined;
  onCallMeMaybe?: (p: PeerPaths, nat: NatHint | undefined) => void;
  unknownPong?: (p: PeerPaths, txid: Buffer, src: Endpoint) => boolean;
  /** hole-punching timers (tests shorten them): an attempt's length and the quiet after a failed one */
  punch?: { attemptMs: number; backoffMs: number };
}

export class Prober {
  private readonly pending = new Map<string, PendingPing>();
  readonly stats: DiscoStats = {
    rx: 0,
    tx: 0,
    dropped: { unknownSender: 0, badBox: 0, unknownTx: 0 },
    callMeMaybeSent: 0,
    callMeMaybeReceived: 0,
    openersSent: 0,
    punchFailures: 0,
    suspectPaths: 0,
    suspectSwitches: 0,
    earlyProbes: 0,
  };

  constructor(private readonly s: ProberParts) {}

  private now(): number {
    return this.s.clock.now();
  }

  /** Forgets the pings in flight (path selection stops). */
  clear(): void {
    this.pending.clear();
  }

  /** One disco ping over the path the engine uses now (every candidate and the relay while it has no trusted one). */
  ping(p: PeerPaths, timeoutMs: number): Promise<PingResult | null> {
    const clock = this.s.clock;
    return new Promise((resolve) => {
      const txids: string[] = [];
      const done = (r: PingResult | null): void => {
        clock.clearTimeout(timer);
        for (const t of txids) this.pending.delete(t);
        resolve(r);
      };
      const timer = clock.setTimeout(() => done(null), timeoutMs);
      if (p.best && this.s.choice.trusted(p.best)) {
        const t = this.sendPing(p, p.best, done);
        if (t) txids.push(t);
      } else {
        if (this.mayProbeFull(p))
          for (const c of p.candidates.values()) {
            const t = this.sendPing(p, c, done);
            if (t) txids.push(t);
          }
        const t = this.sendRelayPing(p, done);
        if (t) txids.push(t);
      }
      if (txids.length === 0) done(null);
    });
  }

  pingAll(p: PeerPaths): void {
    p.lastFullProbeMs = this.now();
    for (const c of p.candidates.values()) this.sendPing(p, c);
    // a path on a per-peer socket (port prediction's) is no candidate of the main socket: its heartbeat goes too
    if (p.best?.via) this.sendPing(p, p.best);
  }

  /** Traffic after a quiet spell with no trusted path: re-prove the last direct path now rather than at the next beat. */
  wake(p: PeerPaths): void {
    if (p.best && this.now() - p.lastWakePingMs >= this.s.timers.heartbeatMs) {
      p.lastWakePingMs = this.now();
      this.sendPing(p, p.best);
    }
  }

  /** One heartbeat over every peer: keep a trusted path proven while active, look for a better one now and then, and
   *  without one keep trying the last good path each beat and everything (with hole punching) less often. */
  beat(): void {
    const now = this.now();
    const { choice, timers } = this.s;
    for (const p of this.s.table.values()) {
      const active = choice.sampleActivity(p, now);
      if (p.best && choice.trusted(p.best)) {
        if (!active) continue;
        if (now - p.lastFullProbeMs >= timers.upgradeMs) this.pingAll(p);
        else this.sendPing(p, p.best);
      } else {
        choice.noteLapse(p, now);
        if (p.best) this.sendPing(p, p.best);
        const failuresBefore = p.punch.failures;
        if (punchBeat(p.punch, now, active || p.best === null, { ...this.punchTimers, retryMs: timers.retryDirectMs }) === 'start') this.startAttempt(p);
        this.stats.punchFailures += p.punch.failures - failuresBefore;
        if (active) this.sendRelayPing(p);
      }
    }
  }

  private get punchTimers(): { attemptMs: number; backoffMs: number } {
    return this.s.punch ?? { attemptMs: PUNCH_ATTEMPT_MS, backoffMs: PUNCH_BACKOFF_MS };
  }

  /**
   * How an attempt towards `p` can be coordinated: openers need a per-packet TTL, call-me-maybe the peer's home relay.
   * 'now': both are there. 'soon': the relay is not connected yet (a daemon starting), so the openers go now and its
   * connection sends the call-me-maybe (relayConnected). 'none': an attempt is full pings at once, as without punch.ts.
   */
  private coordination(p: PeerPaths): 'now' | 'soon' | 'none' {
    if (!this.s.udp.sendTtl) return 'none';
    if (this.s.choice.relayUsable(p)) return 'now';
    return this.s.relay && p.homeRelay && p.punch.failures === 0 ? 'soon' : 'none';
  }

  /**
   * Whether full-TTL pings may go to every candidate now: not while a failed attempt's conntrack entries expire, and
   * in a coordinated attempt only once the peer said its NAT is open (or a path was proven before: its tuples are ours).
   */
  private mayProbeFull(p: PeerPaths): boolean {
    if (quiet(p.punch, this.now())) return false;
    return this.coordination(p) === 'none' || p.best !== null || p.punch.fullSent;
  }

  /**
   * New candidates or a peer (setPeers), a relay connected, or the heartbeat's retry: hole punching towards `p`. In an
   * attempt already, our openers and call-me-maybe go again (new candidates, a relay just connected); while quiet, nothing.
   */
  punch(p: PeerPaths): void {
    if (quiet(p.punch, this.now())) return;
    if (p.punch.attemptStartMs === null) return this.startAttempt(p);
    const how = this.coordination(p);
    if (how === 'none') {
      this.pingAll(p);
      this.callMeMaybe(p);
    } else if (p.punch.initiator && this.sendOpeners(p)) this.callMeMaybe(p, true);
    else if (p.punch.fullSent) this.pingAll(p); // answering the peer's call-me-maybe already: new candidates get full pings too
  }

  /** Begins an attempt: openers and a flagged call-me-maybe when it is our turn (else we wait for the peer's), or full pings. */
  private startAttempt(p: PeerPaths): void {
    const now = this.now();
    const how = this.coordination(p);
    const initiator = how === 'none' || initiatesNext(p.punch, this.s.nodeKey.compare(p.nodeKey) < 0);
    const asked = p.punch.peerAsked;
    attemptStarted(p.punch, now, initiator, how !== 'none');
    if (!initiator) {
      // the peer's turn: its call-me-maybe starts our full pings, or started them already if it came while we were quiet
      if (asked) {
        p.punch.fullSent = true;
        this.pingAll(p);
      }
      return;
    }
    if (how !== 'none' && this.sendOpeners(p)) {
      this.callMeMaybe(p, true);
      return;
    }
    // uncoordinated, or the kernel refused the TTL send: full pings at once and an unflagged call-me-maybe, as before
    p.punch.coordinated = false;
    p.punch.fullSent = true;
    this.pingAll(p);
    this.callMeMaybe(p);
  }

  /** One TTL-limited ping to each candidate (at most MAX_CANDIDATES); false when the bind could not send one. */
  private sendOpeners(p: PeerPaths): boolean {
    const send = this.s.udp.sendTtl;
    if (!send) return false;
    for (const c of p.candidates.values()) {
      // no pending entry: an opener expires on the way, nothing answers it
      const pkt = sealDisco({ type: 'ping', txid: randomBytes(TXID_LEN), nodeKey: this.s.nodeKey }, this.s.disco.publicKey, p.sharedKey);
      if (!send.call(this.s.udp, pkt, c.ep, OPENER_TTL)) return false;
      this.stats.tx++;
      this.stats.openersSent++;
    }
    return true;
  }

  private newTx(pend: PendingPing): Buffer {
    const txid = randomBytes(TXID_LEN);
    const key = txid.toString('hex');
    this.pending.set(key, pend);
    this.s.clock.setTimeout(() => this.pending.delete(key), this.s.timers.pingTimeoutMs);
    return txid;
  }

  private sendPing(p: PeerPaths, cand: Candidate, onPong?: (r: PingResult) => void): string | null {
    const now = this.now();
    const txid = this.newTx({ peer: p, cand, region: null, sentMs: now, onPong });
    cand.lastPingMs = now;
    cand.pingedBack = false;
    if (cand.unansweredSinceMs === null) {
      cand.unansweredSinceMs = now;
      // the first unanswered ping of the path in use: if no pong comes within lostAfterMs, the path is suspect then
      if (cand === p.best) this.s.clock.setTimeout(() => this.overdue(p, cand, now), this.s.choice.lostAfterMs(cand));
    }
    return this.sendDirect(p, cand.ep, { type: 'ping', txid, nodeKey: this.s.nodeKey }, cand.via) ? txid.toString('hex') : null;
  }

  private sendRelayPing(p: PeerPaths, onPong?: (r: PingResult) => void): string | null {
    const region = this.s.choice.relayUsable(p);
    if (!region) return null;
    const txid = this.newTx({ peer: p, cand: null, region, sentMs: this.now(), onPong });
    return this.sendViaRelay(p, region, { type: 'ping', txid, nodeKey: this.s.nodeKey }) ? txid.toString('hex') : null;
  }

  private sendDirect(p: PeerPaths, ep: Endpoint, m: DiscoMessage, via?: PeerSocket): boolean {
    const ok = (via ?? this.s.udp).send(sealDisco(m, this.s.disco.publicKey, p.sharedKey), ep);
    if (ok) this.stats.tx++;
    return ok;
  }

  private sendViaRelay(p: PeerPaths, region: string, m: DiscoMessage): boolean {
    const ok = this.s.relay?.send(region, p.nodeKey, sealDisco(m, this.s.disco.publicKey, p.sharedKey)) ?? false;
    if (ok) this.stats.tx++;
    return ok;
  }

  /**
   * The ping sent at `sentMs`, the first unanswered one of the path in use, had no pong within lostAfterMs: the path is
   * suspect, so the relay carries copies of its traffic (PathManager.sendToPeer) until a pong. A candidate that
   * answered since the path's last pong takes over now; otherwise one more ping goes to the path, in case only the pong
   * was lost. Nothing happens when a pong came meanwhile, the path changed, or trust has lapsed (the heartbeat's case).
   */
  private overdue(p: PeerPaths, c: Candidate, sentMs: number): void {
    if (this.s.table.getByHex(p.hex) !== p || p.best !== c || c.unansweredSinceMs !== sentMs) return;
    const { choice } = this.s;
    if (!choice.trusted(c) || !choice.suspect(c)) return;
    this.stats.suspectPaths++;
    let alt: Candidate | null = null;
    for (const o of p.candidates.values()) {
      if (o === c || o.lastPongMs === null || o.lastPongMs <= (c.lastPongMs ?? -Infinity) || !choice.confirmed(o)) continue;
      if (!alt || (o.latencyMs ?? Infinity) < (alt.latencyMs ?? Infinity)) alt = o;
    }
    if (alt) {
      this.stats.suspectSwitches++;
      choice.consider(p, alt, alt.lastPongMs);
      return;
    }
    this.sendPing(p, c);
  }

  /**
   * Probes the path in use now, not at the next heartbeat: a hint says it may have died. Not while a ping to it is
   * unanswered (that one decides), nor more often than PING_BACK_MIN_MS.
   */
  private probeEarly(p: PeerPaths): void {
    const c = p.best;
    if (!c || c.unansweredSinceMs !== null || !this.s.choice.trusted(c) || this.now() - c.lastPingMs < PING_BACK_MIN_MS) return;
    this.stats.earlyProbes++;
    this.sendPing(p, c);
  }

  /**
   * The silence watch (PathManager runs it every silenceMs / 4 while a peer is active on a trusted direct path): a
   * peer we sent data to that sent nothing back for silenceMs gets a ping on its path now, at most one per silenceMs.
   * Returns whether any peer still needs watching.
   */
  watch(): boolean {
    const now = this.now();
    const { choice, timers } = this.s;
    let any = false;
    for (const p of this.s.table.values()) {
      const c = p.best;
      if (!c || !choice.trusted(c) || !choice.isActive(p)) continue;
      any = true;
      if (choice.sampleSilence(p, now) && now - c.lastPingMs >= timers.silenceMs) this.probeEarly(p);
    }
    return any;
  }

  /** Tells the peer, over the relay, every address we can be reached at: both sides then ping each other at once (hole punching). */
  callMeMaybe(p: PeerPaths, opened = false, nat = this.s.natHint?.()): void {
    const region = this.s.choice.relayUsable(p);
    const eps = this.s.localEndpoints?.() ?? [];
    if (!region || eps.length === 0) return;
    if (this.sendViaRelay(p, region, { type: 'callMeMaybe', endpoints: eps, ...(nat ? { nat } : {}), ...(opened ? { opened } : {}) }))
      this.stats.callMeMaybeSent++;
  }

  /**
   * A disco packet, from a direct address or (src = relayEndpoint(region)) from the relay; `via`: it came on that
   * per-peer socket (port prediction's), which answers it. Never throws.
   */
  receive(buf: Buffer, src: Endpoint, via?: PeerSocket): void {
    this.stats.rx++;
    const p = this.s.table.byDiscoKey(discoSender(buf).toString('hex'));
    if (!p) {
      this.stats.dropped.unknownSender++;
      return;
    }
    const m = openDisco(buf, p.sharedKey);
    if (!m) {
      this.stats.dropped.badBox++;
      return;
    }
    const viaRelay = relayRegionOf(src);
    if (m.type === 'ping') {
      if (!m.nodeKey.equals(p.nodeKey)) {
        this.stats.dropped.badBox++;
        return;
      }
      if (viaRelay) this.sendViaRelay(p, viaRelay, { type: 'pong', txid: m.txid, src: { address: '0.0.0.0', port: 0 } });
      else if (via) this.sendDirect(p, src, { type: 'pong', txid: m.txid, src }, via);
      else {
        this.sendDirect(p, src, { type: 'pong', txid: m.txid, src });
        // the peer reached us from src, so its NAT now lets us in from there: measure that path now,
        // not at the next full probe (retryDirectMs), even when src was a candidate already
        const added = this.s.table.addCandidate(p, src);
        const c = added ?? p.candidates.get(endpointKey(src));
        if (c && !this.s.choice.trusted(c) && (!c.pingedBack || this.now() - c.lastPingMs >= PING_BACK_MIN_MS)) {
          this.sendPing(p, c);
          c.pingedBack = true;
        }
        // the peer pings from an address that never answered us while we use another path: its NAT may have given it
        // a new mapping, and the path in use (the old one) may be dead. Probe it now; if it stays silent, this one takes over
        if (c !== p.best && (added || c?.lastPongMs === null)) this.probeEarly(p);
      }
    } else if (m.type === 'pong') {
      this.onPong(p, m.txid, src, via);
    } else {
      this.stats.callMeMaybeReceived++;
      for (const ep of m.endpoints) this.s.table.addCandidate(p, ep);
      // port prediction hears the peer's NAT hint whatever the hole punching below decides
      this.s.onCallMeMaybe?.(p, m.nat);
      const now = this.now();
      if (onCallMeMaybe(p.punch, now, m.opened === true) === 'defer') return;
      // the peer's NAT is open towards us (its openers went before this): full pings now, in an attempt of our own
      if (p.punch.attemptStartMs === null) attemptStarted(p.punch, now, false, this.coordination(p) !== 'none');
      p.punch.fullSent = true;
      this.pingAll(p);
    }
  }

  private onPong(p: PeerPaths, txid: Buffer, src: Endpoint, via?: PeerSocket): void {
    const key = txid.toString('hex');
    const pend = this.pending.get(key);
    const region = relayRegionOf(src);
    const matches = pend && pend.peer === p && (pend.cand ? !region && endpointEquals(pend.cand.ep, src) && pend.cand.via === via : region === pend.region);
    // a candidate forgotten since its ping went (the table made room for a newer one) proves nothing
    const forgotten = pend?.cand && !pend.cand.via && p.candidates.get(endpointKey(pend.cand.ep)) !== pend.cand;
    if (!pend || !matches || forgotten) {
      if (!via && !region && this.s.unknownPong?.(p, txid, src)) return;
      this.stats.dropped.unknownTx++;
      return;
    }
    this.pending.delete(key);
    const now = this.now();
    const latencyMs = now - pend.sentMs;
    if (pend.cand) {
      const prevPongMs = pend.cand.lastPongMs;
      pend.cand.unansweredSinceMs = null;
      pend.cand.latencyMs = latencyMs;
      pend.cand.lastPongMs = now;
      punchSucceeded(p.punch);
      this.s.choice.consider(p, pend.cand, prevPongMs);
      pend.onPong?.({ kind: 'direct', endpoint: { ...src }, latencyMs });
    } else {
      p.relayLatencyMs = latencyMs;
      pend.onPong?.({ kind: 'relay', region: pend.region!, latencyMs });
    }
  }
}
