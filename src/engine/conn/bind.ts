// The interface between the WireGuard device and whatever moves its datagrams:
// the UDP sockets (udp.ts), path selection (../paths/pathbind.ts) or a test's
// in-memory network. The device depends on this interface only.
import type { Endpoint } from './endpoint.js';

/** The UDP side of the device: what it sends datagrams through and receives them from (wireguard-go's conn.Bind). */
export interface NetBind {
  /** Binds (or rebinds) to `port` (0 = any); resolves with the bound port. */
  open(port: number, onDatagram: (buf: Buffer, src: Endpoint) => void): Promise<number>;
  close(): Promise<void>;
  send(buf: Buffer, ep: Endpoint): boolean;
  /** optional: sends between these two calls may be batched into one system call */
  beginBatch?(): void;
  flushBatch?(): void;
  /**
   * optional, while batching: room for a datagram of `len` bytes to `ep` inside
   * the batch, as an offset into `reserved` (or -1: use `send`); the caller
   * writes it there and calls `commit`, which queues it
   */
  reserve?(len: number, ep: Endpoint): number;
  readonly reserved?: Buffer | null;
  commit?(): void;
  setMark(mark: number): void;
  /** optional: one datagram with its own IP TTL / hop limit (hole-punching openers); false when unavailable */
  sendTtl?(buf: Buffer, ep: Endpoint, ttl: number): boolean;
}
