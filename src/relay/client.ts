// A connection to one relay: TLS (the certificate pinned by the fingerprint
// control published, or verified normally), the HTTP upgrade, the key
// handshake, then packets to and from other nodes by key. It reconnects with
// backoff and measures its round trip with pings; it never throws into the
// caller, it reports state.
import type { TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { boxKey, sealBox } from '../crypto/box.js';
import { publicKeyOf } from '../crypto/x25519.js';
import { FrameReader, FrameType, frame, KEY_LEN, RELAY_PATH, RELAY_UPGRADE, RETRY_SHORTLY, SERVER_MAGIC } from './frames.js';
import { corkedWrite } from './cork.js';
import { queuedBytes } from './hold.js';
import { SHORT_ID_LEN, SHORT_IDS_MAX, ShortIdAssigner, ShortIdTable, shortIdBytes, shortIdsOffered } from './short-ids.js';
import { connectMarkedTls } from '../util/marked-socket.js';
import { armStreamLiveness } from '../control/liveness.js';

export interface RelayClientOptions {
  url: string;
  /**
   * Another address of the same relay (its IPv6 address, from the relay map): tried at once when a
   * connection to the URL's host fails, before any backoff, so a node without IPv4, or whose IPv4
   * path to the relay is broken, connects over IPv6. The one that last worked is tried first.
   */
  altAddress?: string;
  /** SHA-256 of the relay's certificate (hex); when set, it is pinned instead of CA verification */
  fingerprint?: string;
  nodePrivate: Buffer;
  /** relay-to-relay mesh links: the region's mesh key, sent only after the certificate checked out */
  meshKey?: string;
  onPacket?: (src: Buffer, pkt: Buffer) => void;
  onPeerGone?: (key: Buffer) => void;
  onPeerPresent?: (key: Buffer) => void;
  onState?: (connected: boolean, error?: string) => void;
  logger?: (msg: string) => void;
  /** bytes that may wait for the socket before packets are dropped; default SEND_QUEUE_BYTES */
  sendQueueBytes?: number;
  /** the short-id table to offer (short-ids.ts), default SHORT_IDS_MAX; 0 offers none: every packet names its peer by key */
  shortIds?: number;
  /**
   * The wall clock ClientInfo's timestamp is read from (the relay takes it within ±2 min of its own): a node
   * passes its estimate of the control server's time, so a node whose clock is off is not refused.
   */
  wallNow?: () => number;
}

/** One field of the relay's ServerInfo JSON, or undefined when it is not JSON or has no such field. */
function serverInfoField(payload: Buffer, name: string): unknown {
  try {
    const v: unknown = JSON.parse(payload.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[name] : undefined;
  } catch {
    return undefined;
  }
}

const CONNECT_TIMEOUT_MS = 10_000;
const PING_MS = 30_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15_000;
/**
 * Data the relay has not acknowledged for this long closes the connection (TCP_USER_TIMEOUT, with TCP keepalive
 * probes after 3 s without a frame: liveness.ts), and it reconnects. A NAT router that forgot the connection (a
 * reboot, a flushed table) drops the relay's packets and the node's retransmissions alike, and TCP's own retries take
 * minutes; relayed traffic stops meanwhile. 5 s is many round trips even on a slow path, and within the 5 s that a
 * flow may lose at a fault (docs/reliability.md).
 */
export const RELAY_USER_TIMEOUT_MS = 5000;
/** No frame at all from the relay for this long (it sends keepalives every 30 s): reconnect. */
const SERVER_IDLE_MS = 75_000;
/**
 * Bytes written for the relay that the kernel has not taken yet: past it packets are dropped, not
 * buffered, so a relay that holds this sender (its receiver is behind: hold.ts) or stops reading
 * costs this much memory at most (one connection per relay region). It is where a relayed TCP
 * stream queues when the relay holds its sender: at 256 KiB one stream still lost ~10 % of its
 * packets here, at 1 MiB none (docs/performance.md, "Relay"), ~28 ms of queue at 300 Mbit/s.
 */
export const SEND_QUEUE_BYTES = 1024 * 1024;

export class RelayClient {
  private sock: TLSSocket | null = null;
  private stopped = false;
  private backoff = BACKOFF_MIN_MS;
  private pingTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private pings = new Map<string, number>();
  private lastRecvMs = 0;
  /** short ids agreed with the relay on this connection (short-ids.ts): ours for destinations, the relay's for sources */
  private sendIds: ShortIdAssigner | null = null;
  private recvIds: ShortIdTable<Buffer> | null = null;
  /** the hosts to connect to: the URL's, then altAddress; `hostAt` is the one being tried, `tries` how many of them this round */
  private readonly hosts: string[];
  private hostAt = 0;
  private tries = 0;
  /** the host of the last connection that opened: each round after a backoff starts there */
  private worked = 0;
  connected = false;
  /** the address:port of the open connection (`[v6]:port` for IPv6), null while not connected */
  remoteAddress: string | null = null;
  latencyMs: number | null = null;
  lastError: string | null = null;
  readonly publicKey: Buffer;
  /** dropped: not connected, or the send queue was full (queueFull counts those alone) */
  readonly stats = { sent: 0, received: 0, dropped: 0, queueFull: 0, reconnects: 0 };

  constructor(private readonly o: RelayClientOptions) {
    this.publicKey = publicKeyOf(o.nodePrivate);
    const urlHost = new URL(o.url).hostname.replace(/^\[|\]$/g, '');
    this.hosts = o.altAddress && o.altAddress !== urlHost ? [urlHost, o.altAddress] : [urlHost];
  }

  /** the short-id table agreed with the relay on this connection, 0 when packets name peers by key */
  get shortIds(): number {
    return this.sendIds?.max ?? 0;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.sock?.destroy();
    this.sock = null;
    this.setConnected(false);
  }

  /**
   * Checks the connection now: a ping goes out, and unless some frame arrives within `timeoutMs` the connection is
   * taken for dead and replaced. For when the network under it may have changed (a NAT that forgot us, a new address):
   * a TCP connection from an address the host no longer has sends nothing and hears nothing, yet looks open.
   */
  probe(timeoutMs: number): void {
    if (!this.connected || this.probeTimer) return;
    // lastRecvMs is on the monotonic clock: so is the probe's start, or every probe would look unanswered
    const since = performance.now();
    this.ping();
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      if (this.connected && this.lastRecvMs < since) this.retry(`relay ${this.o.url}: no answer to a probe within ${timeoutMs} ms`);
    }, timeoutMs);
    this.probeTimer.unref();
  }

  /** Sends a packet to the node with key `dst`; false when not connected or the socket is backed up. */
  send(dst: Buffer, pkt: Buffer): boolean {
    const ids = this.sendIds;
    if (!ids) return this.sendFrame(frame(FrameType.sendPacket, dst, pkt));
    const hex = dst.toString('hex');
    const { id, fresh } = ids.idFor(hex);
    const idb = shortIdBytes(id);
    const data = frame(FrameType.sendPacketShort, idb, pkt);
    if (!fresh) return this.sendFrame(data);
    if (this.sendFrame(Buffer.concat([frame(FrameType.peerId, idb, dst), data]))) return true;
    ids.forget(hex);
    return false;
  }

  sendFrame(f: Buffer): boolean {
    const s = this.sock;
    if (!this.connected || !s || s.destroyed) {
      this.stats.dropped++;
      return false;
    }
    if (queuedBytes(s) > (this.o.sendQueueBytes ?? SEND_QUEUE_BYTES)) {
      this.stats.dropped++;
      this.stats.queueFull++;
      return false;
    }
    corkedWrite(s, f);
    this.stats.sent++;
    return true;
  }

  private setConnected(c: boolean, error?: string): void {
    if (error) this.lastError = error;
    if (c) this.lastError = null;
    if (!c) this.remoteAddress = null;
    if (c === this.connected && !error) return;
    this.connected = c;
    this.o.onState?.(c, error);
  }

  private retry(why: string): void {
    this.sock?.destroy();
    this.sock = null;
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.setConnected(false, why);
    if (this.stopped || this.retryTimer) return;
    // the relay's other address next, at once: a failed address family costs no backoff
    if (++this.tries < this.hosts.length) {
      this.hostAt = (this.hostAt + 1) % this.hosts.length;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.connect();
      }, 0);
      this.retryTimer.unref();
      return;
    }
    this.tries = 0;
    this.hostAt = this.worked;
    const wait = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(BACKOFF_MAX_MS, this.backoff * 2);
    this.stats.reconnects++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, wait);
    this.retryTimer.unref();
  }

  /** The TLS socket carries meshctl's fwmark (util/marked-socket.ts): an exit node's default route never captures the relay. */
  private connect(): void {
    if (this.stopped) return;
    const u = new URL(this.o.url);
    const host = this.hosts[this.hostAt]!;
    const pinned = this.o.fingerprint?.toLowerCase();
    connectMarkedTls({ host, port: Number(u.port || 443), rejectUnauthorized: !pinned, timeout: CONNECT_TIMEOUT_MS }).then(
      (sock) => {
        if (this.stopped) return void sock.destroy();
        this.attach(sock, u, pinned);
      },
      (err: Error) => this.retry(`relay ${this.o.url}${this.via(host)}: ${err.message}`),
    );
  }

  private attach(sock: TLSSocket, u: URL, pinned: string | undefined): void {
    this.sock = sock;
    this.sendIds = null;
    this.recvIds = null;
    let phase: 'http' | 'key' | 'info' | 'open' = 'http';
    let httpBuf = '';
    const reader = new FrameReader();
    const host = this.hosts[this.hostAt]!;
    const fail = (why: string): void => {
      if (this.sock === sock) this.retry(`relay ${this.o.url}${this.via(host)}: ${why}`);
    };
    sock.once('secureConnect', () => {
      if (pinned) {
        const fp = sock.getPeerCertificate().fingerprint256?.replace(/:/g, '').toLowerCase();
        if (fp !== pinned) return fail(`certificate fingerprint ${fp} is not the pinned ${pinned}`);
      }
      sock.setNoDelay(true);
      sock.setTimeout(0);
      armStreamLiveness(sock, RELAY_USER_TIMEOUT_MS);
      sock.write(`GET ${RELAY_PATH} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: ${RELAY_UPGRADE}\r\nConnection: Upgrade\r\n\r\n`);
    });
    sock.on('timeout', () => fail('connection timed out'));
    sock.on('error', (err: NodeJS.ErrnoException) => fail(err.code === 'ECONNREFUSED' ? 'connection refused' : err.message));
    sock.on('close', () => fail('connection closed'));
    sock.on('data', (chunk: Buffer) => {
      this.lastRecvMs = performance.now();
      if (phase === 'http') {
        httpBuf += chunk.toString('latin1');
        const end = httpBuf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!/^HTTP\/1\.1 101/.test(httpBuf)) return fail(`upgrade refused: ${httpBuf.split('\r\n')[0]}`);
        chunk = Buffer.from(httpBuf.slice(end + 4), 'latin1');
        phase = 'key';
        if (chunk.length === 0) return;
      }
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (err) {
        return fail((err as Error).message);
      }
      for (const f of frames) {
        if (phase === 'key') {
          if (
            f.type !== FrameType.serverKey ||
            f.payload.length !== SERVER_MAGIC.length + KEY_LEN ||
            !f.payload.subarray(0, SERVER_MAGIC.length).equals(SERVER_MAGIC)
          )
            return fail('not a meshctl relay');
          const serverKey = f.payload.subarray(SERVER_MAGIC.length);
          const info = JSON.stringify({
            version: 1,
            tsMs: (this.o.wallNow ?? Date.now)(),
            ...(this.o.meshKey ? { meshKey: this.o.meshKey } : {}),
            ...((this.o.shortIds ?? SHORT_IDS_MAX) > 0 ? { shortIds: this.o.shortIds ?? SHORT_IDS_MAX } : {}),
          });
          sock.write(frame(FrameType.clientInfo, this.publicKey, sealBox(boxKey(this.o.nodePrivate, serverKey), Buffer.from(info))));
          phase = 'info';
        } else if (f.type === FrameType.close) {
          const why = f.payload.toString('utf8');
          // refused for good (unknown key, full, wrong mesh key): do not hammer it; refused for now (its control server
          // restarting): the usual backoff, so the node is back on its home relay within seconds of control, not 15 s after
          if (!why.endsWith(RETRY_SHORTLY)) this.backoff = BACKOFF_MAX_MS;
          return fail(`refused: ${why}`);
        } else if (phase === 'info') {
          if (f.type !== FrameType.serverInfo) return fail('expected ServerInfo');
          // the relay's size is at most what we offered (a relay that takes none says nothing)
          const size = Math.min(shortIdsOffered(serverInfoField(f.payload, 'shortIds')), this.o.shortIds ?? SHORT_IDS_MAX);
          if (size) {
            this.sendIds = new ShortIdAssigner(size);
            this.recvIds = new ShortIdTable(size);
          }
          phase = 'open';
          this.backoff = BACKOFF_MIN_MS;
          // a drop of an open connection backs off as before, then starts again with this address
          this.worked = this.hostAt;
          this.tries = this.hosts.length - 1;
          this.remoteAddress = host.includes(':') ? `[${host}]:${Number(u.port || 443)}` : `${host}:${Number(u.port || 443)}`;
          this.setConnected(true);
          this.pingTimer = setInterval(() => this.ping(), PING_MS);
          this.pingTimer.unref();
          this.ping();
        } else this.onFrame(f.type, f.payload);
      }
    });
  }

  /** ` (via ADDRESS)` when connecting to the relay's other address rather than the URL's host. */
  private via(host: string): string {
    return host === this.hosts[0] ? '' : ` (via ${host})`;
  }

  private ping(): void {
    // monotonic: a wall clock stepped back must not hide a dead relay for as long as the step
    if (performance.now() - this.lastRecvMs > SERVER_IDLE_MS) return this.retry(`relay ${this.o.url}: silent for ${SERVER_IDLE_MS / 1000}s`);
    const id = randomBytes(8);
    this.pings.set(id.toString('hex'), performance.now());
    if (this.pings.size > 16) this.pings.delete(this.pings.keys().next().value!);
    this.sendFrame(frame(FrameType.ping, id));
  }

  private onFrame(type: number, p: Buffer): void {
    switch (type) {
      case FrameType.recvPacket:
        if (p.length < KEY_LEN) return;
        this.stats.received++;
        this.o.onPacket?.(p.subarray(0, KEY_LEN), p.subarray(KEY_LEN));
        return;
      case FrameType.peerId:
        if (p.length === SHORT_ID_LEN + KEY_LEN) this.recvIds?.define(p.readUInt16BE(0), Buffer.from(p.subarray(SHORT_ID_LEN)));
        return;
      case FrameType.recvPacketShort: {
        const src = p.length >= SHORT_ID_LEN ? this.recvIds?.get(p.readUInt16BE(0)) : undefined;
        if (!src) return;
        this.stats.received++;
        this.o.onPacket?.(src, p.subarray(SHORT_ID_LEN));
        return;
      }
      case FrameType.peerGone:
        if (p.length >= KEY_LEN) this.o.onPeerGone?.(p.subarray(0, KEY_LEN));
        return;
      case FrameType.peerPresent:
        if (p.length >= KEY_LEN) this.o.onPeerPresent?.(p.subarray(0, KEY_LEN));
        return;
      case FrameType.ping:
        this.sendFrame(frame(FrameType.pong, p.subarray(0, 8)));
        return;
      case FrameType.pong: {
        const t = this.pings.get(p.toString('hex', 0, 8));
        if (t !== undefined) this.latencyMs = performance.now() - t;
        return;
      }
      default:
        return;
    }
  }
}
