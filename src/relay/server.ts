// `meshctl relay serve`: the relay of last resort. Nodes that cannot reach
// each other directly send WireGuard and disco packets here over TLS (an HTTP
// upgrade on one HTTPS port, so it passes firewalls that allow only HTTPS),
// addressed by node key; the relay cannot read them. Clients prove possession
// of their key; with --verify-clients only nodes the control server knows get
// in, and are rechecked while connected. Until its handshake is verified a
// connection is not read from, so it cannot make the relay buffer for it, and
// it counts against caps per source and in total (pending.ts); connected
// clients are capped too (MAX_CLIENTS).
// Relays of one region mesh with each other (pinned certificates, a shared
// mesh key), so a node reached through any of them gets the packet. A STUN
// server runs beside it.
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { boxKey, openBox } from '../crypto/box.js';
import { keyToText } from '../crypto/keys.js';
import { FrameReader, FrameType, frame, KEY_LEN, MAX_PACKET, PeerGoneReason, RELAY_PATH, RELAY_UPGRADE, RETRY_SHORTLY, SERVER_MAGIC } from './frames.js';
import { corkedWrite } from './cork.js';
import { queuedBytes, SenderHolds } from './hold.js';
import { SHORT_ID_LEN, ShortIdAssigner, ShortIdTable, shortIdBytes, shortIdsOffered } from './short-ids.js';
import { RelayMesh, type MeshPeer } from './mesh.js';
import { meshKeyDigest, meshKeyMatches } from './mesh-key.js';
import { PendingConnections, type PendingLimits, type PendingStats } from './pending.js';
import { loadRelayIdentity } from './state.js';
import { StunServer, type StunLimits } from './stun-server.js';
import { ClientVerifier, type ClientVerifierOptions } from './verify.js';
import { rateLimitedLog } from '../util/rate-limited-log.js';

export interface RelayServerOptions {
  host: string;
  port: number;
  stunPort: number;
  region: string;
  stateDir: string;
  tlsCert?: string;
  tlsKey?: string;
  verifyClientsUrl?: string;
  verifyClientsCa?: string;
  /** the region's mesh key (from a file or the environment, never argv) */
  meshKey?: string;
  meshWith?: MeshPeer[];
  /** per-client receive budget in bytes per second; 0 = unlimited */
  clientRateBytesPerSec?: number;
  /** tuning of --verify-clients lookups (cache, rate limits); tests use small values */
  verify?: Omit<ClientVerifierOptions, 'url' | 'caFile'>;
  /** how often connected clients are rechecked with control; default VERIFY_RECHECK_MS */
  verifyRecheckMs?: number;
  /** bytes a client may have sent before its handshake is verified; default PRE_AUTH_BACKLOG_BYTES */
  preAuthBacklogBytes?: number;
  /** connections in their handshake at once; default MAX_HANDSHAKES */
  maxHandshakes?: number;
  /** connected clients at once (mesh links not counted); default MAX_CLIENTS */
  maxClients?: number;
  /** accepted, not yet verified connections: per source, in total, and the deadline for the upgrade */
  pending?: PendingLimits;
  stunLimits?: StunLimits;
  /** senders are held while a receiver has more than this queued (hold.ts); default HOLD_SENDERS_BYTES */
  holdSendersBytes?: number;
  /** and for at most this long; default MAX_HOLD_MS */
  maxHoldMs?: number;
  logger?: (msg: string) => void;
}

/** A client that sent nothing for this long is gone (it pings every 30 s). */
const CLIENT_IDLE_TIMEOUT_MS = 75_000;
/** The server's keepalive, so NATs and proxies keep the TCP connection open. */
const KEEPALIVE_MS = 30_000;
/** The handshake must finish this fast, or the connection is dropped. */
const HANDSHAKE_TIMEOUT_MS = 5000;
/**
 * Per-client send queue: beyond it packets are dropped, never buffered, so one
 * slow client stalls nobody. DERP's is 32 packets, drained by a writer per
 * client; here a sender's batch of up to 64 packets arrives in one read and is
 * forwarded in one turn, so the queue holds two such batches (at 51 KB it
 * dropped 21 % of a relayed TCP stream: docs/performance.md, "Relay").
 */
const QUEUE_BYTES = 160 * 1600;
/**
 * Connected clients at once. Each may hold QUEUE_BYTES (256 000 B) of frames
 * queued for it, so at worst 10 000 × 256 000 B = 2.56 GB of queues (plus tens
 * of KiB of socket and TLS state each): a relay host of 4 GB survives every
 * queue full at once. Past it a new node key is refused with a Close frame; a
 * key already connected may reconnect (it replaces its old connection).
 */
export const MAX_CLIENTS = 10_000;
/** Refusals and accept errors are logged at most once a minute each, so a flood cannot flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;
/** A ClientInfo box must be this fresh. */
const CLIENT_INFO_MAX_AGE_MS = 2 * 60 * 1000;
/**
 * What a client may have sent between its ClientInfo and the end of the
 * verification: a real client sends nothing then (it waits for ServerInfo), and
 * the socket is paused meanwhile, so this is room for what the read that
 * brought the ClientInfo also brought. Past it the connection is dropped.
 */
export const PRE_AUTH_BACKLOG_BYTES = 64 * 1024;
/**
 * Connections between the upgrade and a verified handshake, at once. Each holds
 * at most a frame and PRE_AUTH_BACKLOG_BYTES (~130 KiB: ~65 MiB in all) for at
 * most HANDSHAKE_TIMEOUT_MS; more are answered 503.
 */
export const MAX_HANDSHAKES = 512;
/**
 * Connected clients are asked about again this often (--verify-clients): with
 * the cache's VERIFY_CACHE_MS, a node deleted at control loses the relay
 * within VERIFY_RECHECK_MS + VERIFY_CACHE_MS (60 s) plus the round's lookups
 * (at VERIFY_LOOKUPS_PER_SEC, 1 s per 50 connected nodes).
 */
export const VERIFY_RECHECK_MS = 30_000;
/** Rechecks of one round run this many at a time, so new clients' lookups are not starved. */
const RECHECK_CONCURRENCY = 4;
/** A revoked client gets this long to read its Close frame before its socket is destroyed. */
const CLOSE_GRACE_MS = 1000;
/** The line a relay without --verify-clients logs at start. */
export const OPEN_RELAY_WARNING =
  'WARNING: no --verify-clients: this relay carries packets for anyone who knows a node key, not only your nodes; start it with --verify-clients https://CONTROL:PORT --control-ca PEM';

export interface RelayStats {
  clients: number;
  packetsRelayed: number;
  packetsForwarded: number;
  /** bytes of the packets in packetsRelayed and packetsForwarded (frame headers and keys not counted) */
  bytesRelayed: number;
  bytesForwarded: number;
  dropped: { queueFull: number; rateLimited: number; noSuchPeer: number; malformed: number; tooLarge: number };
  /** `full`: new node keys refused at MAX_CLIENTS */
  refused: { handshake: number; unauthorized: number; busy: number; preAuthBacklog: number; full: number };
  /** connections accepted and not yet verified (TLS, upgrade, handshake), and those refused or cut at that stage */
  pending: PendingStats;
  /** connections in their handshake now, and the bytes they have sent that wait for it */
  preAuth: { connections: number; bufferedBytes: number; peakBufferedBytes: number };
  /** clients closed because a recheck found their key no longer known */
  revoked: number;
  /** senders held for a receiver's full queue, and receivers that did not drain within the hold's limit (hold.ts) */
  holds: SenderHolds['stats'];
}

// Every interval here (idleness, the rate limit's refill, re-verification) is measured on the monotonic clock
// (performance.now): a wall clock stepped back would stall the refill and idle checks for as long as the step,
// and one stepped forward would drop every client as idle at once. Only ClientInfo's timestamp is wall time.
export class RelayClientConn {
  lastRecvMs = performance.now();
  /** when control last said this key is known (clients admitted through --verify-clients) */
  verifiedAtMs = performance.now();
  /** closed by the relay: frames still arriving are ignored */
  closed = false;
  private tokens: number;
  private lastRefillMs = performance.now();
  /** peers that sent to this client recently: they hear PeerGone when it leaves */
  readonly senders = new Set<string>();
  /** the client's key: the source of what it sends */
  readonly key: Buffer;
  /** with short ids agreed at the handshake: the client's ids for destinations, and ours for sources toward it */
  sendIds: ShortIdTable<string> | null = null;
  private recvIds: ShortIdAssigner | null = null;

  constructor(
    readonly keyHex: string,
    readonly sock: Duplex,
    readonly mesh: boolean,
    private readonly rate: number,
  ) {
    this.tokens = rate;
    this.key = Buffer.from(keyHex, 'hex');
  }

  /** Short ids of a table of `size` in both directions (short-ids.ts). */
  enableShortIds(size: number): void {
    this.sendIds = new ShortIdTable(size);
    this.recvIds = new ShortIdAssigner(size);
  }

  /** Queues a packet from `src`: by short id where agreed (its definition first when it is new); false = dropped. */
  sendPacket(srcHex: string, src: Buffer, pkt: Buffer): boolean {
    const ids = this.recvIds;
    if (!ids) return this.send(frame(FrameType.recvPacket, src, pkt));
    const { id, fresh } = ids.idFor(srcHex);
    const idb = shortIdBytes(id);
    const data = frame(FrameType.recvPacketShort, idb, pkt);
    if (!fresh) return this.send(data);
    if (this.send(Buffer.concat([frame(FrameType.peerId, idb, src), data]))) return true;
    ids.forget(srcHex);
    return false;
  }

  /** Token bucket of `rate` bytes per second with one second of burst. */
  allow(bytes: number): boolean {
    if (this.rate <= 0) return true;
    const now = performance.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.lastRefillMs) / 1000) * this.rate);
    this.lastRefillMs = now;
    if (this.tokens < bytes) return false;
    this.tokens -= bytes;
    return true;
  }

  /** Queues a frame unless the client's queue is full; false = dropped. */
  send(buf: Buffer): boolean {
    if (queuedBytes(this.sock) > QUEUE_BYTES || this.sock.destroyed) return false;
    corkedWrite(this.sock, buf);
    return true;
  }
}

export class RelayServer {
  private server: Server | null = null;
  private stun: StunServer | null = null;
  private mesh: RelayMesh | null = null;
  private verifier: ClientVerifier | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private recheckTimer: NodeJS.Timeout | null = null;
  private rechecking = false;
  private meshDigest: Buffer | null = null;
  readonly clients = new Map<string, RelayClientConn>();
  private readonly watchers = new Set<RelayClientConn>();
  private identity: { privateKey: Buffer; publicKey: Buffer; cert: string; key: string; fingerprint: string } | null = null;
  private readonly pending: PendingConnections;
  private readonly holds: SenderHolds;
  readonly stats: RelayStats;
  private readonly log: (msg: string) => void;
  private readonly logFull: (msg: string) => void;
  private readonly logAcceptError: (msg: string) => void;
  boundPort = 0;

  constructor(readonly opts: RelayServerOptions) {
    this.log = opts.logger ?? (() => {});
    this.pending = new PendingConnections(opts.pending ?? {}, this.log);
    this.holds = new SenderHolds(opts.holdSendersBytes, opts.maxHoldMs);
    this.stats = {
      clients: 0,
      packetsRelayed: 0,
      packetsForwarded: 0,
      bytesRelayed: 0,
      bytesForwarded: 0,
      dropped: { queueFull: 0, rateLimited: 0, noSuchPeer: 0, malformed: 0, tooLarge: 0 },
      refused: { handshake: 0, unauthorized: 0, busy: 0, preAuthBacklog: 0, full: 0 },
      pending: this.pending.stats,
      preAuth: { connections: 0, bufferedBytes: 0, peakBufferedBytes: 0 },
      revoked: 0,
      holds: this.holds.stats,
    };
    this.logFull = rateLimitedLog(this.log, REFUSAL_LOG_INTERVAL_MS);
    this.logAcceptError = rateLimitedLog(this.log, REFUSAL_LOG_INTERVAL_MS);
  }

  get fingerprint(): string {
    return this.identity?.fingerprint ?? '';
  }
  get publicKey(): Buffer | null {
    return this.identity?.publicKey ?? null;
  }
  get stunPort(): number {
    return this.stun?.port ?? 0;
  }
  get stunStats() {
    return this.stun?.stats;
  }
  get verifierStats() {
    return this.verifier ? { ...this.verifier.stats, cached: this.verifier.cacheSize, inFlight: this.verifier.inFlightCount } : undefined;
  }
  /** the mesh links this relay made (to --mesh-with peers) */
  get meshLinks() {
    return this.mesh?.links ?? [];
  }

  async start(): Promise<void> {
    const o = this.opts;
    this.identity = await loadRelayIdentity(o.stateDir, o.host, o.tlsCert, o.tlsKey);
    if (o.verifyClientsUrl) this.verifier = new ClientVerifier({ url: o.verifyClientsUrl, caFile: o.verifyClientsCa, ...o.verify });
    this.meshDigest = o.meshKey ? meshKeyDigest(o.meshKey) : null;
    const server = createHttpsServer({ cert: this.identity.cert, key: this.identity.key }, (req, res) => {
      // plain GETs: a cheap probe for latency over HTTPS when UDP is blocked
      if (req.url === '/relay/probe') {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        return res.end(`meshctl relay ${o.region}\n`);
      }
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end(`upgrade to ${RELAY_UPGRADE} at ${RELAY_PATH}\n`);
    });
    // node's own deadlines before a request (TLS handshake 120 s, headers 60 s) are far longer: connections are counted and cut here
    this.pending.attach(server);
    server.on('upgrade', (req: IncomingMessage, sock: Duplex, head: Buffer) => this.upgrade(req, sock, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => resolve());
    });
    server.removeAllListeners('error');
    // a failed accept (out of file descriptors) is an 'error' on the listening server: log it, keep serving
    server.on('error', (err: NodeJS.ErrnoException) => this.logAcceptError(`accepting a connection failed: ${err.code ?? err.message}`));
    this.server = server;
    this.boundPort = (server.address() as { port: number }).port;
    this.stun = new StunServer(o.host, o.stunPort, o.stunLimits);
    await this.stun.start();
    this.keepalive = setInterval(() => this.tick(), KEEPALIVE_MS / 2);
    if (this.verifier) this.recheckTimer = setInterval(() => this.recheck(), o.verifyRecheckMs ?? VERIFY_RECHECK_MS);
    if (o.meshWith?.length && o.meshKey) {
      this.mesh = new RelayMesh(o.meshWith, o.meshKey, (dst) => this.clients.get(dst) ?? null, this.log);
      this.mesh.start();
    }
    this.log(
      `relay ${o.region} on https://${o.host}:${this.boundPort}, STUN on udp ${this.stun.port}, key ${keyToText(this.identity.publicKey)}, certificate sha256 ${this.identity.fingerprint}`,
    );
    if (!this.verifier) this.log(OPEN_RELAY_WARNING);
  }

  async stop(): Promise<void> {
    if (this.keepalive) clearInterval(this.keepalive);
    if (this.recheckTimer) clearInterval(this.recheckTimer);
    this.verifier?.stop();
    this.mesh?.stop();
    for (const c of this.clients.values()) c.sock.destroy();
    this.clients.clear();
    this.pending.closeAll();
    await this.stun?.stop();
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((r) => this.server!.close(() => r()));
    }
    this.server = null;
  }

  private tick(): void {
    const now = performance.now();
    const ka = frame(FrameType.keepAlive);
    for (const c of new Set(this.clients.values())) {
      if (now - c.lastRecvMs > CLIENT_IDLE_TIMEOUT_MS) {
        this.log(`client ${c.keyHex.slice(0, 8)}… silent for ${CLIENT_IDLE_TIMEOUT_MS / 1000}s: dropping it`);
        c.sock.destroy();
        continue;
      }
      c.send(ka);
    }
  }

  private upgrade(req: IncomingMessage, sock: Duplex, head: Buffer): void {
    if (req.url !== RELAY_PATH || String(req.headers.upgrade).toLowerCase() !== RELAY_UPGRADE) {
      sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    if (this.stats.preAuth.connections >= (this.opts.maxHandshakes ?? MAX_HANDSHAKES)) {
      this.stats.refused.busy++;
      sock.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n\r\n');
      return;
    }
    this.pending.upgraded(sock);
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${RELAY_UPGRADE}\r\nConnection: Upgrade\r\n\r\n`);
    (sock as Duplex & { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true);
    sock.write(frame(FrameType.serverKey, SERVER_MAGIC, this.identity!.publicKey));
    const reader = new FrameReader();
    const pre = this.stats.preAuth;
    const cap = this.opts.preAuthBacklogBytes ?? PRE_AUTH_BACKLOG_BYTES;
    let conn: RelayClientConn | null = null;
    let handshaking = false;
    // frames that arrive while the (async) handshake runs wait here, in order
    let backlog: { type: number; payload: Buffer }[] = [];
    // bytes this connection has sent that wait for its handshake: the backlog and any partial frame
    let held = 0;
    let inHandshake = true;
    pre.connections++;
    const hold = (bytes: number): void => {
      pre.bufferedBytes += bytes - held;
      held = bytes;
      if (held > pre.peakBufferedBytes) pre.peakBufferedBytes = held;
    };
    const handshakeEnded = (): void => {
      if (!inHandshake) return;
      inHandshake = false;
      pre.connections--;
      hold(0);
    };
    // no session by then: cut (a refused client that keeps its end open is cut here too, without counting twice)
    const timer = setTimeout(() => {
      if (!conn) {
        if (inHandshake) this.stats.refused.handshake++;
        sock.destroy();
      }
    }, HANDSHAKE_TIMEOUT_MS);
    let backlogBytes = 0;
    const onData = (chunk: Buffer): void => {
      if (conn?.closed) return;
      let frames;
      try {
        frames = reader.push(chunk);
      } catch {
        this.stats.dropped.malformed++;
        sock.destroy();
        return;
      }
      for (const f of frames) {
        if (conn) this.onFrame(conn, f.type, f.payload);
        else if (handshaking) {
          backlog.push(f);
          backlogBytes += 5 + f.payload.length;
        } else {
          handshaking = true;
          // nothing more is read from this client until its handshake is decided
          sock.pause();
          void this.handshake(sock, f.type, f.payload).then((c) => {
            handshaking = false;
            handshakeEnded();
            if (!c) {
              backlog = []; // refused: the socket stays paused until it closes (or the handshake timer cuts it)
              return;
            }
            conn = c;
            clearTimeout(timer);
            for (const b of backlog) this.onFrame(c, b.type, b.payload);
            backlog = [];
            sock.resume();
          });
        }
      }
      if (inHandshake) {
        hold(backlogBytes + reader.bufferedBytes);
        if (handshaking && held > cap) {
          this.stats.refused.preAuthBacklog++;
          this.log(`a client sent ${held} bytes before its handshake was verified (at most ${cap}): dropping it`);
          backlog = [];
          handshakeEnded();
          sock.destroy();
        }
      }
    };
    if (head.length) onData(head);
    sock.on('data', onData);
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      clearTimeout(timer);
      handshakeEnded();
      if (conn) this.remove(conn);
    });
  }

  private async handshake(sock: Duplex, type: number, payload: Buffer): Promise<RelayClientConn | null> {
    const refuse = (why: string, counter: 'handshake' | 'unauthorized' | 'busy' | 'full'): null => {
      this.stats.refused[counter]++;
      sock.end(frame(FrameType.close, Buffer.from(why)));
      return null;
    };
    if (type !== FrameType.clientInfo || payload.length < KEY_LEN + 40) return refuse('expected ClientInfo', 'handshake');
    const clientKey = Buffer.from(payload.subarray(0, KEY_LEN));
    type Info = { version?: unknown; tsMs?: unknown; meshKey?: unknown; shortIds?: unknown };
    const info = ((): Info | null => {
      try {
        const plain = openBox(boxKey(this.identity!.privateKey, clientKey), payload.subarray(KEY_LEN));
        const v: unknown = plain ? JSON.parse(plain.toString('utf8')) : null;
        return v && typeof v === 'object' && !Array.isArray(v) ? (v as Info) : null;
      } catch {
        return null;
      }
    })();
    if (!info) return refuse('ClientInfo was not sealed by the key it names', 'handshake');
    if (typeof info.tsMs !== 'number' || Math.abs(Date.now() - info.tsMs) > CLIENT_INFO_MAX_AGE_MS)
      return refuse('ClientInfo is stale: check the clock', 'handshake');
    const isMesh = info.meshKey !== undefined;
    if (isMesh && !this.meshDigest) return refuse('this relay has no mesh key: it takes no mesh links', 'unauthorized');
    if (isMesh && !meshKeyMatches(info.meshKey, this.meshDigest)) return refuse('wrong mesh key', 'unauthorized');
    const hex = clientKey.toString('hex');
    // checked before the lookup (none is spent on a client that cannot get in), and again after it before the client is added
    if (!isMesh && this.full(hex)) return this.refuseFull(refuse);
    if (!isMesh && this.verifier) {
      const verdict = await this.verifier.check(clientKey);
      if (verdict === 'unknown') return refuse('node key not known to the control server', 'unauthorized');
      if (verdict === 'busy') return refuse(`relay busy verifying clients: ${RETRY_SHORTLY}`, 'busy');
      if (verdict === 'error') return refuse(`the control server could not be asked about this node key: ${RETRY_SHORTLY}`, 'busy');
    }
    if (sock.destroyed) return null;
    if (!isMesh && this.full(hex)) return this.refuseFull(refuse);
    this.pending.verified(sock);
    const conn = new RelayClientConn(hex, sock, isMesh, this.opts.clientRateBytesPerSec ?? 0);
    if (!isMesh) {
      const old = this.clients.get(hex);
      if (old) old.sock.destroy(); // a reconnect replaces the old connection
      this.clients.set(hex, conn);
      this.stats.clients = this.clients.size;
      this.announce(FrameType.peerPresent, clientKey);
    }
    const shortIds = isMesh ? 0 : shortIdsOffered(info.shortIds);
    if (shortIds) conn.enableShortIds(shortIds);
    const serverInfo = { version: 1, region: this.opts.region, keepAliveMs: KEEPALIVE_MS, ...(shortIds ? { shortIds } : {}) };
    sock.write(frame(FrameType.serverInfo, Buffer.from(JSON.stringify(serverInfo))));
    return conn;
  }

  /** No room for a new client: the relay holds its cap, and `hex` is not one of them (a reconnect replaces its old connection). */
  private full(hex: string): boolean {
    return this.clients.size >= (this.opts.maxClients ?? MAX_CLIENTS) && !this.clients.has(hex);
  }

  private refuseFull(refuse: (why: string, counter: 'full') => null): null {
    const max = this.opts.maxClients ?? MAX_CLIENTS;
    this.logFull(
      `refusing new clients: ${this.clients.size} are connected, the most this relay takes (MAX_CLIENTS ${max}); add a relay to the region to share them`,
    );
    return refuse(`relay full: ${max} clients connected; try again later or another relay`, 'full');
  }

  /**
   * One round of --verify-clients rechecks: every client not confirmed within
   * the recheck interval is looked up again (through the cache); one control
   * now calls unknown is closed. A failed or refused lookup keeps the client:
   * control being down must not cut every relayed path.
   */
  private recheck(): void {
    const v = this.verifier;
    if (!v || this.rechecking) return;
    const every = this.opts.verifyRecheckMs ?? VERIFY_RECHECK_MS;
    const now = performance.now();
    const due = [...this.clients.values()].filter((c) => now - c.verifiedAtMs >= every / 2);
    if (!due.length) return;
    this.rechecking = true;
    const worker = async (): Promise<void> => {
      for (let c = due.shift(); c; c = due.shift()) {
        if (c.closed || this.clients.get(c.keyHex) !== c) continue;
        const verdict = await v.check(Buffer.from(c.keyHex, 'hex'));
        if (verdict === 'known') c.verifiedAtMs = performance.now();
        else if (verdict === 'unknown' && this.clients.get(c.keyHex) === c) {
          this.stats.revoked++;
          this.log(`client ${c.keyHex.slice(0, 8)}… is no longer known to the control server: closing it`);
          this.close(c, 'node key no longer known to the control server');
        }
      }
    };
    void Promise.all(Array.from({ length: RECHECK_CONCURRENCY }, worker)).finally(() => (this.rechecking = false));
  }

  /** Ends a client's session: it stops counting as connected at once, hears why, and is cut after a grace. */
  private close(c: RelayClientConn, why: string): void {
    c.closed = true;
    this.remove(c);
    const t = setTimeout(() => c.sock.destroy(), CLOSE_GRACE_MS);
    t.unref();
    c.sock.end(frame(FrameType.close, Buffer.from(why)), () => c.sock.destroy());
  }

  private onFrame(c: RelayClientConn, type: number, p: Buffer): void {
    c.lastRecvMs = performance.now();
    switch (type) {
      case FrameType.sendPacket:
        if (p.length < KEY_LEN) return void this.stats.dropped.malformed++;
        return this.relayFrom(c, p.toString('hex', 0, KEY_LEN), p.subarray(KEY_LEN));
      case FrameType.peerId:
        if (!c.sendIds || p.length !== SHORT_ID_LEN + KEY_LEN || !c.sendIds.define(p.readUInt16BE(0), p.toString('hex', SHORT_ID_LEN)))
          this.stats.dropped.malformed++;
        return;
      case FrameType.sendPacketShort: {
        const dstHex = c.sendIds && p.length >= SHORT_ID_LEN ? c.sendIds.get(p.readUInt16BE(0)) : undefined;
        if (dstHex === undefined) return void this.stats.dropped.malformed++;
        return this.relayFrom(c, dstHex, p.subarray(SHORT_ID_LEN));
      }
      case FrameType.forwardPacket: {
        // from a meshed relay of this region: src ‖ dst ‖ packet
        if (!c.mesh || p.length < 2 * KEY_LEN) return void this.stats.dropped.malformed++;
        const dst = this.clients.get(p.toString('hex', KEY_LEN, 2 * KEY_LEN));
        if (dst?.sendPacket(p.toString('hex', 0, KEY_LEN), p.subarray(0, KEY_LEN), p.subarray(2 * KEY_LEN))) {
          this.stats.packetsRelayed++;
          this.stats.bytesRelayed += p.length - 2 * KEY_LEN;
        } else this.stats.dropped.noSuchPeer++;
        return;
      }
      case FrameType.watchConns: {
        if (!c.mesh) return void this.stats.dropped.malformed++;
        this.watchers.add(c);
        for (const k of this.clients.keys()) c.send(frame(FrameType.peerPresent, Buffer.from(k, 'hex')));
        return;
      }
      case FrameType.ping:
        c.send(frame(FrameType.pong, p.subarray(0, 8)));
        return;
      case FrameType.keepAlive:
      case FrameType.pong:
        return;
      default:
        this.stats.dropped.malformed++;
    }
  }

  /** A packet from client `c` to the node `dstHex`: to that node here, else through the region's mesh, else PeerGone. */
  private relayFrom(c: RelayClientConn, dstHex: string, pkt: Buffer): void {
    if (pkt.length > MAX_PACKET) return void this.stats.dropped.tooLarge++;
    // charged as the full-key frame's payload, whichever form carried it
    if (!c.allow(KEY_LEN + pkt.length)) return void this.stats.dropped.rateLimited++;
    const local = this.clients.get(dstHex);
    if (local) {
      local.senders.add(c.keyHex);
      if (local.sendPacket(c.keyHex, c.key, pkt)) {
        this.stats.packetsRelayed++;
        this.stats.bytesRelayed += pkt.length;
        this.holds.queued(c, local);
      } else this.stats.dropped.queueFull++;
      return;
    }
    const dst = Buffer.from(dstHex, 'hex');
    if (this.mesh?.forward(c.key, dst, pkt)) {
      this.stats.packetsForwarded++;
      this.stats.bytesForwarded += pkt.length;
      return;
    }
    this.stats.dropped.noSuchPeer++;
    c.send(frame(FrameType.peerGone, dst, Buffer.of(PeerGoneReason.notHere)));
  }

  private announce(type: number, key: Buffer, reason?: number): void {
    for (const w of this.watchers) {
      if (w.sock.destroyed) this.watchers.delete(w);
      else w.send(reason === undefined ? frame(type, key) : frame(type, key, Buffer.of(reason)));
    }
  }

  private remove(c: RelayClientConn): void {
    this.watchers.delete(c);
    this.holds.forget(c);
    if (c.mesh || this.clients.get(c.keyHex) !== c) return;
    this.clients.delete(c.keyHex);
    this.stats.clients = this.clients.size;
    const key = Buffer.from(c.keyHex, 'hex');
    const gone = frame(FrameType.peerGone, key, Buffer.of(PeerGoneReason.disconnected));
    for (const s of c.senders) this.clients.get(s)?.send(gone);
    this.announce(FrameType.peerGone, key, PeerGoneReason.disconnected);
  }
}
