// An in-memory UDP network for engine tests: datagrams are queued and delivered
// by `pump()`, so tests control ordering, loss and replay, on a FakeClock.
import type { NetBind } from '../../src/engine/conn/bind.js';
import { endpointKey, type Endpoint } from '../../src/engine/conn/endpoint.js';

export interface Datagram {
  buf: Buffer;
  src: Endpoint;
  dst: Endpoint;
}

export class MemNet {
  private readonly hosts = new Map<string, (buf: Buffer, src: Endpoint) => void>();
  queue: Datagram[] = [];
  /** return false to drop a datagram in flight */
  filter: (d: Datagram) => boolean = () => true;
  delivered = 0;

  bind(address: string): MemBind {
    return new MemBind(this, address);
  }

  register(ep: Endpoint, cb: (buf: Buffer, src: Endpoint) => void): void {
    this.hosts.set(endpointKey(ep), cb);
  }

  unregister(ep: Endpoint): void {
    this.hosts.delete(endpointKey(ep));
  }

  /** Delivers queued datagrams (and what they cause) until the network is quiet. */
  pump(maxDatagrams = 100_000): void {
    for (let i = 0; i < maxDatagrams && this.queue.length > 0; i++) {
      const d = this.queue.shift()!;
      if (!this.filter(d)) continue;
      const h = this.hosts.get(endpointKey(d.dst));
      if (h) {
        this.delivered++;
        h(d.buf, d.src);
      }
    }
  }
}

export class MemBind implements NetBind {
  private self: Endpoint | null = null;
  private static nextPort = 40000;
  sent = 0;
  constructor(
    private readonly net: MemNet,
    private readonly address: string,
  ) {}

  async open(port: number, onDatagram: (buf: Buffer, src: Endpoint) => void): Promise<number> {
    if (this.self) this.net.unregister(this.self);
    this.self = { address: this.address, port: port || MemBind.nextPort++ };
    this.net.register(this.self, onDatagram);
    return this.self.port;
  }
  async close(): Promise<void> {
    if (this.self) this.net.unregister(this.self);
    this.self = null;
  }
  send(buf: Buffer, ep: Endpoint): boolean {
    if (!this.self) return false;
    this.sent++;
    this.net.queue.push({ buf: Buffer.from(buf), src: { ...this.self }, dst: { ...ep } });
    return true;
  }
  // batches as UdpBind's do, so the engine's in-place sends run here too
  private batching = false;
  private reservation: { len: number; ep: Endpoint } | null = null;
  reserved: Buffer | null = null;
  /** datagrams written in place (reserve/commit) */
  inPlace = 0;
  beginBatch(): void {
    this.batching = true;
  }
  flushBatch(): void {
    this.batching = false;
  }
  reserve(len: number, ep: Endpoint): number {
    if (!this.batching || !this.self) return -1;
    this.reserved = Buffer.alloc(len + 7);
    this.reservation = { len, ep };
    return 7; // not at 0: a writer that ignores the offset fails
  }
  commit(): void {
    const r = this.reservation;
    if (!r) return; // as UdpBind: nothing reserved, nothing sent
    this.reservation = null;
    this.inPlace++;
    this.send(this.reserved!.subarray(7, 7 + r.len), r.ep);
  }
  setMark(): void {}
}

/** A minimal IPv4 packet (no valid L4, the engine does not look past the IP header). */
export function ipv4Packet(src: string, dst: string, payloadLen: number, fill = 0xab): Buffer {
  const p = Buffer.alloc(20 + payloadLen, fill);
  p[0] = 0x45;
  p[1] = 0;
  p.writeUInt16BE(20 + payloadLen, 2);
  p.writeUInt32BE(0, 4);
  p[8] = 64;
  p[9] = 17;
  p.writeUInt16BE(0, 10);
  Buffer.from(src.split('.').map(Number)).copy(p, 12);
  Buffer.from(dst.split('.').map(Number)).copy(p, 16);
  return p;
}
