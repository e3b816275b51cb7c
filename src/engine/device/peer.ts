// One WireGuard peer as the device sees it (wireguard-go's device/peer.go):
// its configuration (preshared key, persistent keepalive, our identity) and
// its receive side, on top of the layers that hold its state, timers, send
// path and handshake (peer-state.ts explains the layering).
import type { Endpoint } from '../conn/endpoint.js';
import type { Keypair } from './keypair.js';
import { makeRemoteStatic, type StaticIdentity } from './noise.js';
import { PeerHandshake } from './peer-handshake.js';

export type { PeerHost } from './peer-state.js';

export class Peer extends PeerHandshake {
  // ---- configuration -------------------------------------------------------

  /**
   * Its AllowedIPs hold a prefix wider than one address (a subnet route, an exit node's default route): a packet the
   * device routes to it is offered to Device.onRouteMiss too, where a more specific peer not yet made may own it.
   */
  routeOwner = false;

  setPresharedKey(psk: Buffer | null): void {
    this.remote = { ...this.remote, presharedKey: psk ?? Buffer.alloc(32) };
  }

  presharedKey(): Buffer | null {
    return this.remote.presharedKey.some((b) => b !== 0) ? this.remote.presharedKey : null;
  }

  /** Our private key changed: recompute DH(s, S) and drop sessions made with the old key. */
  rekeyIdentity(id: StaticIdentity | null): void {
    const psk = this.presharedKey();
    this.remote = makeRemoteStatic(id, this.remote.publicKey, psk);
    this.expireCurrentKeypairs();
  }

  setPersistentKeepalive(sec: number): void {
    const turnedOn = this.persistentKeepaliveSec === 0 && sec > 0;
    this.persistentKeepaliveSec = sec;
    if (sec === 0) this.timersPersistentKeepaliveOff();
    // wireguard-go sends one at once so a NAT mapping opens without waiting a full interval
    if (turnedOn && this.endpoint) this.sendKeepalive();
  }

  // ---- receiving -------------------------------------------------------------

  /** Called after a transport packet on `kp` authenticated; rotates `next` in when first used. */
  receivedWith(kp: Keypair, src: Endpoint, datagramLength: number, payloadLength: number): void {
    this.roam(src);
    this.rxBytes += datagramLength;
    if (kp === this.next) {
      this.dropKeypair(this.previous);
      this.previous = this.current;
      this.current = kp;
      this.next = null;
      this.timersHandshakeComplete();
      this.sendStagedPackets();
    }
    this.keepKeyFreshReceiving();
    this.timersAnyAuthenticatedPacketTraversal();
    this.timersAnyAuthenticatedPacketReceived();
    if (payloadLength > 0) this.timersDataReceived();
  }

  private keepKeyFreshReceiving(): void {
    if (this.sentLastMinuteHandshake) return;
    const kp = this.current;
    if (!kp?.isInitiator) return;
    const t = this.host.timers;
    const c = this.host.coarseClock; // up to CLOCK_TICK_MS late, of the 15 s this handshake has before REJECT_AFTER_TIME
    c.stamp();
    if (c.ms - kp.createdMs > t.rejectAfterTimeMs - t.keepaliveTimeoutMs - t.rekeyTimeoutMs) {
      this.sentLastMinuteHandshake = true;
      this.sendHandshakeInitiation(false);
    }
  }

  /** Stops all timers and forgets all keys: the peer is being removed. */
  close(): void {
    this.timersStop();
    this.expireAll();
    this.dropStaged();
  }
}
