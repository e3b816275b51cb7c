// One WireGuard peer is one object whose methods are split by job across
// files, the way wireguard-go splits *Peer's methods across device/peer.go,
// timers.go, send.go and noise-protocol.go. Each file is a layer that extends
// the one below: this state (the peer's static key, endpoint, keypair slots and
// byte counters), peer-timers.ts (the timer state machine, whitepaper §6),
// peer-send.ts (staging, encryption, the datagrams it hands to the bind),
// peer-handshake.ts (the Noise handshake and the keypairs it makes) and peer.ts
// (configuration and the receive side). The device only ever makes the top
// layer, so every call stays a plain method call on one object shape.
import type { Clock } from '../clock.js';
import { CLOCK_TICK_MS, type CoarseClock } from '../coarse-clock.js';
import type { NetBind } from '../conn/bind.js';
import { endpointEquals, isVirtualEndpoint, type Endpoint } from '../conn/endpoint.js';
import { REJECT_AFTER_MESSAGES, type EngineTimers } from './constants.js';
import type { IndexTable, Keypair } from './keypair.js';
import { makeRemoteStatic, type RemoteStatic, type StaticIdentity } from './noise.js';
import type { EngineStats } from './stats.js';

/** What a peer needs from its device. */
export interface PeerHost {
  readonly clock: Clock;
  /** the clock per-packet checks read: at most CLOCK_TICK_MS old while packets flow (coarse-clock.ts) */
  readonly coarseClock: CoarseClock;
  readonly timers: EngineTimers;
  /** the device's receiver indices; the peer registers itself (the device's table holds the whole Peer these layers make) */
  readonly indices: IndexTable<PeerState>;
  readonly stats: EngineStats;
  /** the timestamp each initiation carries: above every one sent before (tai64n-source.ts) */
  readonly handshakeTimestamps: { next(): Buffer };
  /** where the peer's datagrams leave: the device's bind (null until one is attached) */
  readonly bind: NetBind | null;
  identity(): StaticIdentity | null;
  mtu(): number;
  log(msg: string): void;
}

export abstract class PeerState {
  remote: RemoteStatic;
  endpoint: Endpoint | null = null;
  persistentKeepaliveSec = 0;
  rxBytes = 0;
  txBytes = 0;
  lastHandshakeWallMs = 0;

  /** previous/current/next: no packet is lost across a rekey */
  protected previous: Keypair | null = null;
  protected current: Keypair | null = null;
  protected next: Keypair | null = null;

  constructor(
    protected readonly host: PeerHost,
    publicKey: Buffer,
  ) {
    this.remote = makeRemoteStatic(host.identity(), publicKey, null);
  }

  get publicKey(): Buffer {
    return this.remote.publicKey;
  }

  /**
   * WireGuard roaming: the endpoint follows the source of authenticated
   * packets, unless path selection owns it (a virtual endpoint, see ../paths/),
   * which then decides between direct paths and the relay itself. A peer that
   * path selection does not own (a plain WireGuard peer: a phone behind a
   * gateway) only ever takes a real address: a source path selection
   * attributed to a mesh peer (its candidate) gives the address it came from,
   * and a relay's pseudo-source gives none, so the peer's packets never leave
   * through a mesh peer's path or a relay.
   */
  roam(src: Endpoint): void {
    if (this.endpoint && isVirtualEndpoint(this.endpoint)) return;
    const real = isVirtualEndpoint(src) ? src.direct : src;
    if (real) this.setEndpoint(real);
  }

  /** Where the answer to a handshake from `src` goes: `src`, or for a plain peer the real address roam() took from it. */
  replyEndpoint(src: Endpoint): Endpoint | null {
    if (!isVirtualEndpoint(src) || (this.endpoint && isVirtualEndpoint(this.endpoint))) return src;
    return src.direct ?? null;
  }

  setEndpoint(ep: Endpoint): void {
    if (!endpointEquals(this.endpoint, ep)) this.endpoint = { address: ep.address, port: ep.port };
  }

  /**
   * REJECT_AFTER_TIME, judged on the coarse clock plus its largest age: a session ends up to CLOCK_TICK_MS before
   * REJECT_AFTER_TIME, and after it only by as much as the event loop runs the clock's tick late. Nothing is lost by that: the initiator starts a new session at REKEY_AFTER_TIME
   * (120 s) and the responder's last-minute handshake comes 15 s before REJECT_AFTER_TIME.
   */
  keypairExpired(kp: Keypair): boolean {
    const c = this.host.coarseClock;
    c.stamp();
    return c.ms + CLOCK_TICK_MS - kp.createdMs >= this.host.timers.rejectAfterTimeMs;
  }

  protected usableForSending(kp: Keypair): boolean {
    if (kp.sendCounter >= REJECT_AFTER_MESSAGES) return false;
    const c = this.host.coarseClock;
    c.stamp();
    return c.ms + CLOCK_TICK_MS - kp.createdMs < this.host.timers.rejectAfterTimeMs;
  }

  protected dropKeypair(kp: Keypair | null): void {
    if (kp) this.host.indices.delete(kp.localIndex);
  }
}
