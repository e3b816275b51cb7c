// The relay wire protocol after the HTTP upgrade: frames of 1-byte type,
// 4-byte big-endian length and payload (DERP's shape). Pure codec: the
// reader accumulates stream chunks and yields whole frames, refusing
// oversized ones, so a malicious peer cannot make either side buffer much.

export const RELAY_PATH = '/relay';
export const RELAY_UPGRADE = 'meshctl-relay';
export const SERVER_MAGIC = Buffer.from('MSHRLY1');
/** WireGuard packets are at most 64 KiB; the largest frame adds two keys. */
export const MAX_PACKET = 64 * 1024;
export const MAX_FRAME = MAX_PACKET + 64 + 5;
const HEADER = 5;
export const KEY_LEN = 32;
/**
 * How a relay's refusal (the text of a close frame in the handshake) ends when the cause passes within seconds: the relay is
 * busy checking clients, or its control server cannot be asked (it is restarting). A client retries those on its usual short
 * backoff; any other refusal waits the longest backoff, so a client the relay will keep refusing does not hammer it.
 */
export const RETRY_SHORTLY = 'try again shortly';

export const FrameType = {
  serverKey: 1,
  clientInfo: 2,
  serverInfo: 3,
  sendPacket: 4,
  recvPacket: 5,
  keepAlive: 6,
  peerGone: 7,
  ping: 8,
  pong: 9,
  forwardPacket: 10,
  peerPresent: 11,
  watchConns: 12,
  close: 13,
  /** id (2 bytes) ‖ key: from now on, on this connection and in this direction, the id names the key (short-ids.ts) */
  peerId: 14,
  /** client → relay: destination id ‖ packet */
  sendPacketShort: 15,
  /** relay → client: source id ‖ packet */
  recvPacketShort: 16,
} as const;

export interface Frame {
  type: number;
  payload: Buffer;
}

export function frame(type: number, ...parts: Buffer[]): Buffer {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.allocUnsafe(HEADER + len);
  out[0] = type;
  out.writeUInt32BE(len, 1);
  let off = HEADER;
  for (const p of parts) off += p.copy(out, off);
  return out;
}

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

/** Incremental frame parser; `push` throws FrameError on a frame larger than MAX_FRAME. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Bytes held that do not yet make a whole frame (at most a header plus MAX_FRAME). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.buffered < HEADER) break;
      const head = this.peek(HEADER);
      const len = head.readUInt32BE(1);
      if (len > MAX_FRAME) throw new FrameError(`frame of ${len} bytes is larger than ${MAX_FRAME}`);
      if (this.buffered < HEADER + len) break;
      const all = this.take(HEADER + len);
      out.push({ type: all[0]!, payload: all.subarray(HEADER) });
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    const first = this.peek(n);
    const out = first.subarray(0, n);
    const rest = first.subarray(n);
    this.chunks[0] = rest;
    if (rest.length === 0) this.chunks.shift();
    this.buffered -= n;
    return out;
  }
}

export const PeerGoneReason = { disconnected: 0, notHere: 1 } as const;
