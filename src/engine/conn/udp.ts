// The device's UDP sockets: one IPv4 and, where the host has IPv6, one IPv6
// socket on the same port (as wireguard-go binds), behind the NetBind interface.
import dgram from 'node:dgram';
import { koffi } from '../../util/koffi.js';
import type { NetBind } from './bind.js';
import { normaliseAddress, type Endpoint } from './endpoint.js';
import { MmsgBatch, MMSG_MAX_BATCH } from './mmsg.js';
import { udpGsoWanted } from '../../util/knobs.js';
import { udpHandle, UdpReader } from './udp-reader.js';
import { TtlSender } from './ttl-send.js';

const SOL_SOCKET = 1;
const SO_MARK = 36; // linux/asm-generic/socket.h
/** Socket buffers large enough to absorb a burst at ~1 Gbit/s for a few ms. */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
const BIND_RETRIES = 8;

export interface UdpBindOptions {
  /** UDP GSO on send where the kernel takes it (default: on unless MESHCTL_UDP_GSO=0) */
  gso?: boolean;
  /** the reader thread's hand-back threshold (reader-mode.ts QUIET_PACKETS); tests pass Infinity to force hand-backs */
  readerQuietPackets?: number;
}

/** The send side's counters, for `status --json` and `debug engine`'s stats. */
export interface UdpSendStats {
  /** sendmmsg calls */
  calls: number;
  /** messages that carried more than one datagram (UDP_SEGMENT), and the datagrams in them */
  gsoSends: number;
  gsoSegments: number;
  /** GSO messages the kernel refused, their datagrams sent again one by one */
  gsoRefused: number;
  /** whether GSO is used: false when not wanted or turned off for good after a refusal */
  gso: boolean;
}

type SetSockOpt = (fd: number, level: number, name: number, val: Buffer, len: number) => number;
let setsockopt: SetSockOpt | null = null;

function fdOf(s: dgram.Socket): number {
  // dgram hides the descriptor; SO_MARK and sendmmsg have no Node API, so read it from the handle.
  return udpHandle(s)?.fd ?? -1;
}

/** Receive-side counters: the reader thread's batches and hand-overs, and UDP GRO's merged reads (thread) and split reads (event loop). */
export interface ReaderStats {
  batches: number;
  truncated: number;
  handovers: number;
  threadStarts: number;
  thread: boolean;
  /** whether UDP_GRO may be on (MESHCTL_UDP_GRO) */
  gro: boolean;
  groReads: number;
  groDatagrams: number;
  groMainSplits: number;
  groMainDatagrams: number;
  groSplitFailures: number;
}

export class UdpBind implements NetBind {
  private v4: dgram.Socket | null = null;
  private v6: dgram.Socket | null = null;
  sendErrors = 0;
  batchedSends = 0;
  /** datagrams that left through sendmmsg */
  batchedDatagrams = 0;
  /** datagrams written straight into the batch (`reserve`/`commit`) rather than copied in */
  inPlaceDatagrams = 0;
  private batching = false;
  private batch4: MmsgBatch | null = null;
  private batch6: MmsgBatch | null = null;
  private reservedIn: MmsgBatch | null = null;
  private reader: UdpReader | null = null;
  /** per-packet TTL sends (hole-punching openers), made at first use; null where sendmsg is unavailable */
  private ttl4: TtlSender | null | undefined;
  private ttl6: TtlSender | null | undefined;
  /** each socket's descriptor, looked up once: the lookup allocates (docs/performance.md, "Per-packet garbage") */
  private readonly fds = new WeakMap<dgram.Socket, number>();
  /** which reader counts a socket's libuv reads (old sockets keep theirs until closed) */
  private readonly readerOf = new WeakMap<dgram.Socket, UdpReader>();
  private readonly onSendError = (err: Error | null): void => {
    if (err) this.sendErrors++;
  };

  private readonly gsoWanted: boolean;
  private readonly readerQuietPackets: number | undefined;

  constructor(
    private readonly logger: (msg: string) => void = () => {},
    opts: UdpBindOptions = {},
  ) {
    this.gsoWanted = opts.gso ?? udpGsoWanted();
    this.readerQuietPackets = opts.readerQuietPackets;
  }

  /** Binds the new sockets first and only then closes the old ones, so a refused port change keeps the device reachable. */
  async open(port: number, onDatagram: (buf: Buffer, src: Endpoint) => void): Promise<number> {
    const { v4, v6, bound } = await this.bindPair(port, onDatagram);
    const old = [this.v4, this.v6];
    const oldReader = this.reader;
    this.v4 = v4;
    this.v6 = v6;
    this.reader = UdpReader.start(v6 ? [v4, v6] : [v4], onDatagram, this.logger, { quietPackets: this.readerQuietPackets });
    if (this.reader) for (const s of v6 ? [v4, v6] : [v4]) this.readerOf.set(s, this.reader);
    await oldReader?.stop();
    await Promise.all(old.map((s) => (s ? new Promise<void>((r) => s.close(() => r())) : undefined)));
    return bound;
  }

  private async bindPair(
    port: number,
    onDatagram: (buf: Buffer, src: Endpoint) => void,
  ): Promise<{ v4: dgram.Socket; v6: dgram.Socket | null; bound: number }> {
    let lastErr: unknown;
    for (let attempt = 0; attempt < (port === 0 ? BIND_RETRIES : 1); attempt++) {
      let v4: dgram.Socket;
      try {
        v4 = await this.bindOne('udp4', port, onDatagram);
      } catch (err) {
        lastErr = err;
        continue;
      }
      const bound = v4.address().port;
      try {
        return { v4, v6: await this.bindOne('udp6', bound, onDatagram), bound };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE') {
          // no IPv6 on this host: IPv4 alone is fine
          this.logger(`IPv6 UDP unavailable (${code ?? (err as Error).message}); using IPv4 only`);
          return { v4, v6: null, bound };
        }
        v4.close();
        lastErr = err; // a random v4 port taken on v6: try another
      }
    }
    throw lastErr;
  }

  private bindOne(type: 'udp4' | 'udp6', port: number, onDatagram: (buf: Buffer, src: Endpoint) => void): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket({ type, ipv6Only: type === 'udp6', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
      s.once('error', reject);
      s.bind({ port, address: type === 'udp4' ? '0.0.0.0' : '::', exclusive: true }, () => {
        s.off('error', reject);
        s.on('error', (err) => this.logger(`udp socket error: ${err.message}`));
        // one listener (the reader's count included): with two, every emit copies the listener array
        s.on('message', (msg, rinfo) => {
          const src = { address: normaliseAddress(rinfo.address), port: rinfo.port };
          const r = this.readerOf.get(s);
          if (r)
            r.deliverMain(msg, src); // splits a read the kernel merged (UDP GRO), and counts
          else onDatagram(msg, src);
        });
        resolve(s);
      });
    });
  }

  send(buf: Buffer, ep: Endpoint): boolean {
    const v6 = ep.address.includes(':');
    const s = v6 ? this.v6 : this.v4;
    if (!s) return false;
    if (this.batching) {
      const b = this.batchFor(v6);
      if (b?.add(buf, ep)) return true;
      if (b && b.count >= MMSG_MAX_BATCH) {
        this.flushOne(b, s);
        if (b.add(buf, ep)) return true;
      }
    }
    s.send(buf, ep.port, ep.address, this.onSendError);
    return true;
  }

  /** One datagram with its own TTL (a cmsg on sendmsg, the socket's TTL untouched); false when that is unavailable. */
  sendTtl(buf: Buffer, ep: Endpoint, ttl: number): boolean {
    const v6 = ep.address.includes(':');
    const s = v6 ? this.v6 : this.v4;
    if (!s) return false;
    const sender = v6 ? (this.ttl6 ??= TtlSender.create(6)) : (this.ttl4 ??= TtlSender.create(4));
    return sender?.send(this.fdOf(s), buf, ep, ttl) ?? false;
  }

  /**
   * While batching: room for a datagram of `len` bytes to `ep` in the batch's
   * own memory (`reserved`), its offset there, or -1 (not batching, too big,
   * no socket for the family); `commit` queues it once written.
   */
  reserve(len: number, ep: Endpoint): number {
    if (!this.batching) return -1;
    const v6 = ep.address.includes(':');
    const s = v6 ? this.v6 : this.v4;
    if (!s) return -1;
    const b = this.batchFor(v6);
    if (!b) return -1;
    if (b.count >= MMSG_MAX_BATCH) this.flushOne(b, s);
    const at = b.reserve(len, ep);
    if (at >= 0) this.reservedIn = b;
    return at;
  }

  /** The family's batch, made at first use (null where sendmmsg is unavailable). */
  private batchFor(v6: boolean): MmsgBatch | null {
    const gso = this.gsoWanted;
    return v6 ? (this.batch6 ??= MmsgBatch.create(6, { gso })) : (this.batch4 ??= MmsgBatch.create(4, { gso }));
  }

  /** the memory the last `reserve` offset points into */
  get reserved(): Buffer | null {
    return this.reservedIn?.memory ?? null;
  }

  commit(): void {
    if (!this.reservedIn) return;
    this.reservedIn.commit();
    this.reservedIn = null;
    this.inPlaceDatagrams++;
  }

  /** Datagrams sent until `flushBatch` go out together with sendmmsg. */
  beginBatch(): void {
    this.batching = true;
  }

  flushBatch(): void {
    this.batching = false;
    if (this.batch4?.count && this.v4) this.flushOne(this.batch4, this.v4);
    if (this.batch6?.count && this.v6) this.flushOne(this.batch6, this.v6);
  }

  private flushOne(b: MmsgBatch, s: dgram.Socket): void {
    const wasGso = b.gso;
    this.batchedDatagrams += b.flush(this.fdOf(s));
    this.batchedSends++;
    if (wasGso && !b.gso) this.logger(`UDP GSO refused by the kernel (${b.gsoOffReason}); sending datagrams one by one from now on`);
    // what the kernel did not take (a full send buffer) goes the ordinary way, in order
    for (let i = b.taken; i < b.queued; i++) s.send(b.datagram(i), b.eps[i]!.port, b.eps[i]!.address, this.onSendError);
    b.clear();
  }

  setMark(mark: number): void {
    setsockopt ??= koffi.load('libc.so.6').func('int setsockopt(int, int, int, void *, uint32)') as SetSockOpt;
    const val = Buffer.alloc(4);
    val.writeUInt32LE(mark >>> 0);
    for (const s of [this.v4, this.v6]) {
      if (!s) continue;
      const fd = this.fdOf(s);
      if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_MARK, val, 4) !== 0) this.logger(`could not set fwmark ${mark} on the UDP socket`);
    }
  }

  private fdOf(s: dgram.Socket): number {
    let fd = this.fds.get(s);
    if (fd === undefined || fd < 0) this.fds.set(s, (fd = fdOf(s)));
    return fd;
  }

  /** Send-side counters of both families' batches. */
  get sendStats(): UdpSendStats {
    const out: UdpSendStats = { calls: 0, gsoSends: 0, gsoSegments: 0, gsoRefused: 0, gso: this.gsoWanted };
    for (const b of [this.batch4, this.batch6]) {
      if (!b) continue;
      out.calls += b.sendCalls;
      out.gsoSends += b.gsoSends;
      out.gsoSegments += b.gsoSegments;
      out.gsoRefused += b.gsoRefused;
      if (!b.gso) out.gso = false;
    }
    return out;
  }

  /** Receive-side counters of the reader thread (null when libuv reads). */
  get readerStats(): ReaderStats | null {
    const r = this.reader;
    return r
      ? {
          batches: r.batches,
          truncated: r.truncated,
          handovers: r.handovers,
          threadStarts: r.threadStarts,
          thread: r.threadRunning,
          gro: r.gro,
          groReads: r.groReads,
          groDatagrams: r.groDatagrams,
          groMainSplits: r.mainSplits,
          groMainDatagrams: r.mainSplitDatagrams,
          groSplitFailures: r.splitFailures,
        }
      : null;
  }

  async close(): Promise<void> {
    await this.reader?.stop();
    this.reader = null;
    const socks = [this.v4, this.v6].filter((s): s is dgram.Socket => s !== null);
    this.v4 = this.v6 = null;
    await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
