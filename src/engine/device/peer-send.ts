// A peer's send path (wireguard-go's device/send.go): an inner IP packet is
// padded, sealed under the current keypair and handed to the device's bind,
// or staged while a handshake completes. Where the bind offers room in its
// send batch the datagram is sealed straight into that memory: no Buffer and
// no copy per packet. The peer calls the bind directly; the bind decides the
// way out (a UDP socket, or path selection's direct path or relay).
import type { NetBind } from '../conn/bind.js';
import type { Endpoint } from '../conn/endpoint.js';
import { packetAead } from './aead.js';
import { MAX_STAGED_PACKETS, PADDING_MULTIPLE, REKEY_AFTER_MESSAGES, TRANSPORT_HEADER_SIZE } from './constants.js';
import { TAG_LEN } from './crypto.js';
import type { Keypair } from './keypair.js';
import { writeTransportHeader } from './messages.js';
import { PeerTimers } from './peer-timers.js';
import type { EngineStats } from './stats.js';

/** Sends one whole datagram through `bind` and counts it in the device's tx counters when the bind took it. */
export function sendCounted(bind: NetBind | null, stats: EngineStats, buf: Buffer, ep: Endpoint): boolean {
  if (!bind) return false;
  const ok = bind.send(buf, ep);
  if (ok) {
    stats.tx.packets++;
    stats.tx.bytes += buf.length;
  }
  return ok;
}

export abstract class PeerSend extends PeerTimers {
  private staged: Buffer[] = [];
  private readonly aead = packetAead();

  /** Sends an inner IP packet, staging it while a handshake completes. */
  sendPacket(pkt: Buffer): void {
    if (this.staged.length === 0) {
      const kp = this.current;
      if (kp && this.usableForSending(kp)) {
        this.encryptAndSend(kp, pkt);
        return;
      }
    }
    this.stage(pkt);
    this.sendStagedPackets();
  }

  sendKeepalive(): void {
    if (this.staged.length === 0) this.stage(Buffer.alloc(0));
    this.sendStagedPackets();
  }

  /** Keeps a copy: a packet handed to sendPacket may be a view of a reused read buffer. */
  private stage(pkt: Buffer): void {
    if (this.staged.length >= MAX_STAGED_PACKETS) {
      this.staged.shift();
      this.host.stats.dropped.noKeypair++;
    }
    this.staged.push(Buffer.from(pkt));
  }

  protected dropStaged(): void {
    this.staged = [];
  }

  sendStagedPackets(): void {
    const kp = this.current;
    if (!kp || !this.usableForSending(kp)) {
      this.sendHandshakeInitiation(false);
      return;
    }
    const batch = this.staged;
    this.staged = [];
    for (const p of batch) this.encryptAndSend(kp, p);
  }

  /** A whole datagram (a handshake message) to `ep`, counted in the peer's and the device's tx bytes when it left. */
  protected sendDatagram(buf: Buffer, ep: Endpoint): void {
    if (sendCounted(this.host.bind, this.host.stats, buf, ep)) this.txBytes += buf.length;
  }

  private encryptAndSend(kp: Keypair, pkt: Buffer): void {
    const ep = this.endpoint;
    if (!ep) {
      this.host.stats.dropped.noEndpoint++;
      return;
    }
    const mtu = this.host.mtu();
    let padded = (pkt.length + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
    if (padded > mtu) padded = Math.max(mtu, pkt.length);
    const len = TRANSPORT_HEADER_SIZE + padded + TAG_LEN;
    const counter = kp.sendCounter++;
    // sealed straight into the send batch's memory where the bind offers room: no Buffer and no copy per packet
    const bind = this.host.bind;
    const at = bind?.reserve?.(len, ep) ?? -1;
    const mem = at >= 0 ? (bind!.reserved ?? null) : null;
    if (mem) {
      writeTransportHeader(mem, kp.remoteIndex, counter, at);
      this.aead.seal(kp.sendKey, counter, pkt, padded - pkt.length, mem, at + TRANSPORT_HEADER_SIZE);
      bind!.commit!();
      this.host.stats.tx.packets++;
      this.host.stats.tx.bytes += len;
      this.txBytes += len;
    } else {
      const out = Buffer.allocUnsafe(len);
      writeTransportHeader(out, kp.remoteIndex, counter);
      this.aead.seal(kp.sendKey, counter, pkt, padded - pkt.length, out, TRANSPORT_HEADER_SIZE);
      if (sendCounted(bind, this.host.stats, out, ep)) this.txBytes += len;
    }
    // timers, in wireguard-go's order (send.go RoutineSequentialSender)
    this.timersAnyAuthenticatedPacketTraversal();
    this.timersAnyAuthenticatedPacketSent();
    if (pkt.length > 0) this.timersDataSent();
    this.keepKeyFreshSending(kp);
  }

  private keepKeyFreshSending(kp: Keypair): void {
    if (!kp.isInitiator) return;
    if (kp.sendCounter > REKEY_AFTER_MESSAGES) {
      this.sendHandshakeInitiation(false);
      return;
    }
    // REKEY_AFTER_TIME on the coarse clock: the new handshake starts up to CLOCK_TICK_MS late, 15 s before it would matter
    const c = this.host.coarseClock;
    c.stamp();
    if (c.ms - kp.createdMs > this.host.timers.rekeyAfterTimeMs) {
      this.sendHandshakeInitiation(false);
    }
  }
}
