// The NetBind the device owns when path selection runs (wireguard-go's
// conn.Bind: the device calls send, the bind finds the way). It sorts what the
// UDP socket receives (disco to the PathManager, STUN to its listener,
// WireGuard to the device with the sender's virtual endpoint). A packet for a
// virtual endpoint goes to the PathManager, which sends it on the trusted
// direct path through the UDP bind or through the relay; for a peer with a
// trusted direct path, `reserve` offers room in the UDP bind's batch instead.
// Calls go one way: device → PathBind → PathManager → UDP bind or relay.
import type { NetBind } from '../conn/bind.js';
import { isVirtualEndpoint, type Endpoint } from '../conn/endpoint.js';
import type { PathManager } from './paths.js';
import { isDisco } from '../../nat/disco.js';
import { isStun } from '../../nat/stun.js';

export class PathBind implements NetBind {
  onStun: ((buf: Buffer, src: Endpoint) => void) | null = null;
  /** the length of the datagram reserved in the UDP batch, counted at commit; -1: none */
  private reservedLen = -1;
  /** the reservation is for a mesh peer's direct path (a virtual endpoint), which path selection counts too */
  private reservedVirtual = false;

  constructor(
    private readonly udp: NetBind,
    private readonly paths: PathManager,
  ) {}

  open(port: number, onDatagram: (buf: Buffer, src: Endpoint) => void): Promise<number> {
    return this.udp.open(port, (buf, src) => {
      const b0 = buf[0];
      if (b0 === 0x6d && isDisco(buf)) return this.paths.receive(buf, src);
      if (b0 !== undefined && b0 < 4 && buf.length >= 20 && b0 <= 1 && isStun(buf)) return this.onStun?.(buf, src);
      const traffic = this.paths.traffic;
      traffic.directReceivedPackets++;
      traffic.directReceivedBytes += buf.length;
      onDatagram(buf, this.paths.translate(src) ?? src);
    });
  }

  close(): Promise<void> {
    return this.udp.close();
  }

  send(buf: Buffer, ep: Endpoint): boolean {
    if (isVirtualEndpoint(ep)) return this.paths.sendToPeer(ep.address, buf);
    // a real endpoint (a stock WireGuard device this node is the gateway of): UDP, so direct
    if (!this.udp.send(buf, ep)) return false;
    const traffic = this.paths.traffic;
    traffic.directSentPackets++;
    traffic.directSentBytes += buf.length;
    return true;
  }

  /** Packets for a peer with a trusted direct path are written into the UDP batch; anything else goes through `send`. */
  reserve(len: number, ep: Endpoint): number {
    const real = isVirtualEndpoint(ep) ? this.paths.directEndpoint(ep.address) : ep;
    const at = real ? (this.udp.reserve?.(len, real) ?? -1) : -1;
    this.reservedLen = at >= 0 ? len : -1;
    this.reservedVirtual = real !== ep;
    return at;
  }

  get reserved(): Buffer | null {
    return this.udp.reserved ?? null;
  }

  commit(): void {
    this.udp.commit?.();
    if (this.reservedLen >= 0) this.paths.countDirectSend(this.reservedLen, this.reservedVirtual);
    this.reservedLen = -1;
  }

  beginBatch(): void {
    this.udp.beginBatch?.();
  }

  flushBatch(): void {
    this.udp.flushBatch?.();
  }

  setMark(mark: number): void {
    this.udp.setMark(mark);
    this.paths.setSocketMark(mark);
  }
}
