// `meshctl relay serve`: the relay of last resort. Nodes that cannot reach
// each other directly send WireGuard and disco packets here over TLS (an HTTP
// upgrade on one HTTPS port, so it passes firewalls that allow only HTTPS),
// addressed by node key; the relay cannot read them. Clients prove possession
// of their key; with --verify-clients only nodes the control server knows get
// in. Relays of one region mesh with each other, so a node reached through any
// of them gets the packet. A STUN server runs beside it.
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { boxKey, openBox } from '../crypto/box.js';
import { keyToText } from '../crypto/keys.js';
import { FrameReader, FrameType, frame, KEY_LEN, MAX_PACKET, PeerGoneReason, RELAY_PATH, RELAY_UPGRADE, SERVER_MAGIC } from './frames.js';
import { corkedWrite, pendingBytes } from './cork.js';
import { RelayMesh } from './mesh.js';
import { loadRelayIdentity } from './state.js';
import { StunServer } from './stun-server.js';
import { ClientVerifier } from './verify.js';

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
  meshKey?: string;
  meshWith?: string[];
  /** per-client receive budget in bytes per second; 0 = unlimited */
  clientRateBytesPerSec?: number;
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
/** A ClientInfo box must be this fresh. */
const CLIENT_INFO_MAX_AGE_MS = 2 * 60 * 1000;

export interface RelayStats {
  clients: number;
  packetsRelayed: number;
  packetsForwarded: number;
  dropped: { queueFull: number; rateLimited: number; noSuchPeer: number; malformed: number; tooLarge: number };
  refused: { handshake: number; unauthorized: number };
}

export class RelayClientConn {
  lastRecvMs = Date.now();
  private tokens: number;
  private lastRefillMs = Date.now();
  /** peers that sent to this client recently: they hear PeerGone when it leaves */
  readonly senders = new Set<string>();

  constructor(readonly keyHex: string, readonly sock: Duplex, readonly mesh: boolean, private readonly rate: number) {
    this.tokens = rate;
  }

  /** Token bucket of `rate` bytes per second with one second of burst. */
  allow(bytes: number): boolean {
    if (this.rate <= 0) return true;
    const now = Date.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.lastRefillMs) / 1000) * this.rate);
    this.lastRefillMs = now;
    if (this.tokens < bytes) return false;
    this.tokens -= bytes;
    return true;
  }

  /** Queues a frame unless the client's queue is full; false = dropped. */
  send(buf: Buffer): boolean {
    const w = this.sock as Duplex & { writableLength: number };
    if (w.writableLength + pendingBytes(this.sock) > QUEUE_BYTES || this.sock.destroyed) return false;
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
  readonly clients = new Map<string, RelayClientConn>();
  private readonly watchers = new Set<RelayClientConn>();
  private identity: { privateKey: Buffer; publicKey: Buffer; cert: string; key: string; fingerprint: string } | null = null;
  readonly stats: RelayStats = { clients: 0, packetsRelayed: 0, packetsForwarded: 0, dropped: { queueFull: 0, rateLimited: 0, noSuchPeer: 0, malformed: 0, tooLarge: 0 }, refused: { handshake: 0, unauthorized: 0 } };
  private readonly log: (msg: string) => void;
  boundPort = 0;

  constructor(readonly opts: RelayServerOptions) {
    this.log = opts.logger ?? (() => {});
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

  async start(): Promise<void> {
    const o = this.opts;
    this.identity = await loadRelayIdentity(o.stateDir, o.host, o.tlsCert, o.tlsKey);
    if (o.verifyClientsUrl) this.verifier = new ClientVerifier(o.verifyClientsUrl, o.verifyClientsCa);
    const server = createHttpsServer({ cert: this.identity.cert, key: this.identity.key }, (req, res) => {
      // plain GETs: a cheap probe for latency over HTTPS when UDP is blocked
      if (req.url === '/relay/probe') {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        return res.end(`meshctl relay ${o.region}\n`);
      }
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end(`upgrade to ${RELAY_UPGRADE} at ${RELAY_PATH}\n`);
    });
    server.on('upgrade', (req: IncomingMessage, sock: Duplex, head: Buffer) => this.upgrade(req, sock, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => resolve());
    });
    this.server = server;
    this.boundPort = (server.address() as { port: number }).port;
    this.stun = new StunServer(o.host, o.stunPort);
    await this.stun.start();
    this.keepalive = setInterval(() => this.tick(), KEEPALIVE_MS / 2);
    if (o.meshWith?.length && o.meshKey) {
      this.mesh = new RelayMesh(o.meshWith, o.meshKey, (dst) => this.clients.get(dst) ?? null, this.log);
      this.mesh.start();
    }
    this.log(`relay ${o.region} on https://${o.host}:${this.boundPort}, STUN on udp ${this.stun.port}, key ${keyToText(this.identity.publicKey)}, certificate sha256 ${this.identity.fingerprint}`);
  }

  async stop(): Promise<void> {
    if (this.keepalive) clearInterval(this.keepalive);
    this.mesh?.stop();
    for (const c of this.clients.values()) c.sock.destroy();
    this.clients.clear();
    await this.stun?.stop();
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((r) => this.server!.close(() => r()));
    }
    this.server = null;
  }

  private tick(): void {
    const now = Date.now();
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
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${RELAY_UPGRADE}\r\nConnection: Upgrade\r\n\r\n`);
    (sock as Duplex & { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true);
    sock.write(frame(FrameType.serverKey, SERVER_MAGIC, this.identity!.publicKey));
    const reader = new FrameReader();
    let conn: RelayClientConn | null = null;
    let handshaking = false;
    // frames that arrive while the (async) handshake runs wait here, in order
    let backlog: { type: number; payload: Buffer }[] = [];
    const timer = setTimeout(() => {
      if (!conn) {
        this.stats.refused.handshake++;
        sock.destroy();
      }
    }, HANDSHAKE_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
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
        else if (handshaking) backlog.push(f);
        else {
          handshaking = true;
          void this.handshake(sock, f.type, f.payload).then((c) => {
            handshaking = false;
            if (!c) return;
            conn = c;
            clearTimeout(timer);
            for (const b of backlog) this.onFrame(c, b.type, b.payload);
            backlog = [];
          });
        }
      }
    };
    if (head.length) onData(head);
    sock.on('data', onData);
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      clearTimeout(timer);
      if (conn) this.remove(conn);
    });
  }

  private async handshake(sock: Duplex, type: number, payload: Buffer): Promise<RelayClientConn | null> {
    const refuse = (why: string, counter: 'handshake' | 'unauthorized'): null => {
      this.stats.refused[counter]++;
      sock.end(frame(FrameType.close, Buffer.from(why)));
      return null;
    };
    if (type !== FrameType.clientInfo || payload.length < KEY_LEN + 40) return refuse('expected ClientInfo', 'handshake');
    const clientKey = Buffer.from(payload.subarray(0, KEY_LEN));
    type Info = { version?: number; tsMs?: number; meshKey?: string };
    const info = ((): Info | null => {
      try {
        const plain = openBox(boxKey(this.identity!.privateKey, clientKey), payload.subarray(KEY_LEN));
        return plain ? (JSON.parse(plain.toString('utf8')) as Info) : null;
      } catch {
        return null;
      }
    })();
    if (!info) return refuse('ClientInfo was not sealed by the key it names', 'handshake');
    if (typeof info.tsMs !== 'number' || Math.abs(Date.now() - info.tsMs) > CLIENT_INFO_MAX_AGE_MS) return refuse('ClientInfo is stale: check the clock', 'handshake');
    const isMesh = info.meshKey !== undefined;
    if (isMesh && info.meshKey !== this.opts.meshKey) return refuse('wrong mesh key', 'unauthorized');
    if (!isMesh && this.verifier && !(await this.verifier.known(clientKey))) return refuse('node key not known to the control server', 'unauthorized');
    if (sock.destroyed) return null;
    const hex = clientKey.toString('hex');
    const conn = new RelayClientConn(hex, sock, isMesh, this.opts.clientRateBytesPerSec ?? 0);
    if (!isMesh) {
      const old = this.clients.get(hex);
      if (old) old.sock.destroy(); // a reconnect replaces the old connection
      this.clients.set(hex, conn);
      this.stats.clients = this.clients.size;
      this.announce(FrameType.peerPresent, clientKey);
    }
    sock.write(frame(FrameType.serverInfo, Buffer.from(JSON.stringify({ version: 1, region: this.opts.region, keepAliveMs: KEEPALIVE_MS }))));
    return conn;
  }

  private onFrame(c: RelayClientConn, type: number, p: Buffer): void {
    c.lastRecvMs = Date.now();
    switch (type) {
      case FrameType.sendPacket: {
        if (p.length < KEY_LEN) return void this.stats.dropped.malformed++;
        if (p.length - KEY_LEN > MAX_PACKET) return void this.stats.dropped.tooLarge++;
        if (!c.allow(p.length)) return void this.stats.dropped.rateLimited++;
        const dstHex = p.toString('hex', 0, KEY_LEN);
        const src = Buffer.from(c.keyHex, 'hex');
        const local = this.clients.get(dstHex);
        if (local) {
          local.senders.add(c.keyHex);
          if (local.send(frame(FrameType.recvPacket, src, p.subarray(KEY_LEN)))) this.stats.packetsRelayed++;
          else this.stats.dropped.queueFull++;
          return;
        }
        if (this.mesh?.forward(src, p.subarray(0, KEY_LEN), p.subarray(KEY_LEN))) {
          this.stats.packetsForwarded++;
          return;
        }
        this.stats.dropped.noSuchPeer++;
        c.send(frame(FrameType.peerGone, p.subarray(0, KEY_LEN), Buffer.of(PeerGoneReason.notHere)));
        return;
      }
      case FrameType.forwardPacket: {
        // from a meshed relay of this region: src ‖ dst ‖ packet
        if (!c.mesh || p.length < 2 * KEY_LEN) return void this.stats.dropped.malformed++;
        const dst = this.clients.get(p.toString('hex', KEY_LEN, 2 * KEY_LEN));
        if (dst?.send(frame(FrameType.recvPacket, p.subarray(0, KEY_LEN), p.subarray(2 * KEY_LEN)))) this.stats.packetsRelayed++;
        else this.stats.dropped.noSuchPeer++;
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

  private announce(type: number, key: Buffer, reason?: number): void {
    for (const w of this.watchers) {
      if (w.sock.destroyed) this.watchers.delete(w);
      else w.send(reason === undefined ? frame(type, key) : frame(type, key, Buffer.of(reason)));
    }
  }

  private remove(c: RelayClientConn): void {
    this.watchers.delete(c);
    if (c.mesh || this.clients.get(c.keyHex) !== c) return;
    this.clients.delete(c.keyHex);
    this.stats.clients = this.clients.size;
    const key = Buffer.from(c.keyHex, 'hex');
    const gone = frame(FrameType.peerGone, key, Buffer.of(PeerGoneReason.disconnected));
    for (const s of c.senders) this.clients.get(s)?.send(gone);
    this.announce(FrameType.peerGone, key, PeerGoneReason.disconnected);
  }
}
