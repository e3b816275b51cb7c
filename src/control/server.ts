// `meshctl control serve`: the control plane. Nodes register over HTTPS with a
// sealed request, then hold one long-lived map stream; every change to the
// network (join, leave, endpoint, delete, expiry) is pushed down every stream
// at once. Operators reach the same server over a root-only unix socket in the
// state dir (admin-server.ts). Existing tunnels never depend on this server
// being up: nodes keep their last map and reconnect with backoff.
import { readFileSync } from '../util/cjs.js';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { keyToText } from '../crypto/keys.js';
import { AdminServer } from './admin-server.js';
import { readJson, sendError, sendJson } from './http-util.js';
import { ControlError, MAP_KEEPALIVE_MS, PATHS, type EndpointsBody, type MapBody, type MapLine, type RegisterBody, type RelayRegion } from './protocol.js';
import { Registry, validEndpoints } from './registry.js';
import { probeRelays } from './relay-probe.js';
import { SealedOpener } from './sealed.js';
import { SqliteStore } from './sqlite-store.js';
import { ensureStateDir, loadControlKey, loadOrCreateCertificate, stateFiles } from './state-dir.js';
import type { ControlStore, NodeRecord } from './store.js';

export interface ControlServerOptions {
  host: string;
  port: number;
  stateDir: string;
  tlsCert?: string;
  tlsKey?: string;
  relays?: RelayRegion[];
  /** node key lifetime; null (default) = never expire */
  keyExpiryMs?: number | null;
  /** how long an ephemeral node may stay offline before it is deleted */
  ephemeralGraceMs?: number;
  logger?: (msg: string) => void;
}

/** Coalesces bursts of changes (three nodes joining at once) into one push, well inside the 1 s goal. */
const BROADCAST_DELAY_MS = 25;
/** How often key expiry is checked, so an expired node drops out of maps promptly. */
const EXPIRY_CHECK_MS = 1000;
const DEFAULT_EPHEMERAL_GRACE_MS = 30_000;
/**
 * After a restart, nodes that had a stream open count as online this long
 * while they reconnect (longer than their 30 s maximum backoff), so a control
 * restart does not make peers tear down working tunnels.
 */
const RECONNECT_GRACE_MS = 45_000;
/** lastSeen is written at most this often per node, to spare the disk. */
const LAST_SEEN_WRITE_MS = 60_000;
/** Relay certificates are re-read this often, so a renewed certificate reaches nodes. */
const RELAY_PROBE_MS = 60_000;
/**
 * A relay that did not answer (it may be starting: a control server and its
 * relays often start together) is asked again after 250 ms, then twice as long
 * each time up to 2 s. Until it answers, the map has no fingerprint for it, and
 * nodes cannot connect to a self-signed relay.
 */
const RELAY_RETRY_FIRST_MS = 250;
const RELAY_RETRY_MAX_MS = 2000;

interface Stream {
  nodeId: number;
  res: ServerResponse;
}

export class ControlServer {
  private server: Server | null = null;
  private admin: AdminServer | null = null;
  private store: ControlStore | null = null;
  private registry: Registry | null = null;
  private opener: SealedOpener | null = null;
  private readonly streams = new Set<Stream>();
  private readonly ephemeralTimers = new Map<number, NodeJS.Timeout>();
  private broadcastTimer: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private expiredIds = new Set<number>();
  private readonly presumedOnline = new Set<number>();
  private graceTimer: NodeJS.Timeout | null = null;
  private relayTimer: NodeJS.Timeout | null = null;
  /** one pending re-probe at a time, however often the periodic probe finds a relay missing */
  private relayRetryTimer: NodeJS.Timeout | null = null;
  private relayRetryMs = RELAY_RETRY_FIRST_MS;
  private relayMap: RelayRegion[] = [];
  private readonly log: (msg: string) => void;
  publicKey: Buffer | null = null;
  certPem = '';
  boundPort = 0;

  constructor(private readonly opts: ControlServerOptions) {
    this.log = opts.logger ?? (() => {});
  }

  async start(): Promise<void> {
    if (this.server) return;
    const { stateDir } = this.opts;
    ensureStateDir(stateDir);
    const ck = loadControlKey(stateDir);
    this.publicKey = ck.publicKey;
    this.opener = new SealedOpener(ck.privateKey);
    this.store = new SqliteStore(stateFiles(stateDir).db);
    this.registry = new Registry(this.store, { keyExpiryMs: this.opts.keyExpiryMs ?? null });
    let cert: string;
    let key: string;
    if (this.opts.tlsCert && this.opts.tlsKey) {
      cert = readFileSync(this.opts.tlsCert, 'utf8');
      key = readFileSync(this.opts.tlsKey, 'utf8');
    } else {
      const c = loadOrCreateCertificate(stateDir, this.opts.host);
      if (c.created) this.log(`created a self-signed certificate in ${stateFiles(stateDir).cert}; clients need it: meshctl control ca --state-dir ${stateDir}`);
      cert = c.cert;
      key = c.key;
    }
    this.certPem = cert;
    const server = createHttpsServer({ cert, key }, (req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 2 * MAP_KEEPALIVE_MS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    this.boundPort = (server.address() as { port: number }).port;
    this.admin = new AdminServer(stateFiles(stateDir).adminSocket, this.registry, () => this.changed(), (id) => this.online(id), (id, reason) => this.endStreams(id, reason));
    await this.admin.start();
    this.keepaliveTimer = setInterval(() => this.writeAll({ type: 'keepalive' }), MAP_KEEPALIVE_MS);
    this.expiryTimer = setInterval(() => this.checkExpiry(), EXPIRY_CHECK_MS);
    for (const n of this.store.listNodes()) {
      if (n.connected) this.presumedOnline.add(n.id);
      else if (n.ephemeral) this.scheduleEphemeralDelete(n.id);
    }
    this.graceTimer = setTimeout(() => this.endGrace(), RECONNECT_GRACE_MS);
    this.relayMap = this.opts.relays ?? [];
    if (this.relayMap.length) {
      await this.refreshRelays();
      this.relayTimer = setInterval(() => void this.refreshRelays(), RELAY_PROBE_MS);
    }
    this.expiredIds = new Set(this.store.listNodes().filter((n) => this.registry!.isExpired(n)).map((n) => n.id));
    this.log(`control server listening on https://${this.opts.host}:${this.boundPort}, control key ${keyToText(ck.publicKey)}`);
  }

  async stop(): Promise<void> {
    for (const t of [this.broadcastTimer, this.keepaliveTimer, this.expiryTimer, this.graceTimer, this.relayTimer, this.relayRetryTimer]) if (t) clearTimeout(t);
    for (const t of this.ephemeralTimers.values()) clearTimeout(t);
    this.ephemeralTimers.clear();
    for (const s of this.streams) s.res.destroy();
    this.streams.clear();
    await this.admin?.stop();
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((r) => this.server!.close(() => r()));
    }
    this.server = null;
    this.store?.close();
    this.store = null;
  }

  private async refreshRelays(): Promise<void> {
    const next = await probeRelays(this.relayMap);
    const missing = next.filter((r) => !r.certFingerprint);
    if (missing.length === 0) this.relayRetryMs = RELAY_RETRY_FIRST_MS;
    else if (this.server && !this.relayRetryTimer) {
      const wait = this.relayRetryMs;
      this.relayRetryMs = Math.min(RELAY_RETRY_MAX_MS, wait * 2);
      for (const r of missing) this.log(`relay ${r.code} at ${r.url} did not answer yet; asking again in ${wait / 1000}s`);
      this.relayRetryTimer = setTimeout(() => {
        this.relayRetryTimer = null;
        void this.refreshRelays();
      }, wait);
      this.relayRetryTimer.unref();
    }
    if (JSON.stringify(next) !== JSON.stringify(this.relayMap)) {
      this.relayMap = next;
      this.changed();
    }
  }

  private online(id: number): boolean {
    if (this.presumedOnline.has(id)) return true;
    for (const s of this.streams) if (s.nodeId === id) return true;
    return false;
  }

  /** Nodes that did not come back after a restart are offline after all. */
  private endGrace(): void {
    this.graceTimer = null;
    const gone = [...this.presumedOnline];
    this.presumedOnline.clear();
    for (const id of gone) {
      if (this.online(id)) continue;
      const n = this.store?.getNode(id);
      if (!n) continue;
      this.store!.updateNode(id, { connected: false });
      if (n.ephemeral) this.scheduleEphemeralDelete(id);
    }
    if (gone.length) this.changed();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.method === 'GET' && req.url === PATHS.key) return sendJson(res, 200, { publicKey: keyToText(this.publicKey!) });
      if (req.method === 'GET' && req.url === '/healthz') return sendJson(res, 200, { ok: true });
      if (req.method === 'GET' && req.url?.startsWith(`${PATHS.verify}?`)) return this.handleVerify(req.url, res);
      if (req.method !== 'POST') throw new ControlError('BAD_REQUEST', `no ${req.method} ${req.url} here`);
      const raw = await readJson(req);
      switch (req.url) {
        case PATHS.register:
          return this.handleRegister(raw, res);
        case PATHS.map:
          return this.handleMap(raw, req, res);
        case PATHS.endpoints:
          return this.handleEndpoints(raw, res);
        case PATHS.logout:
          return this.handleLogout(raw, res);
        default:
          throw new ControlError('BAD_REQUEST', `no POST ${req.url} here`);
      }
    } catch (err) {
      if (!(err instanceof ControlError)) this.log(`error on ${req.url}: ${(err as Error).message}`);
      sendError(res, err);
    }
  }

  private knownNode(nodeKey: string): NodeRecord {
    const n = this.store!.getNodeByKey(nodeKey);
    if (!n) throw new ControlError('NODE_UNKNOWN', 'this node is not registered (deleted or logged out): run `meshctl up --auth-key KEY`');
    if (this.registry!.isExpired(n)) throw new ControlError('NODE_EXPIRED', 'node key expired: run `meshctl up --auth-key KEY` to re-authenticate');
    return n;
  }

  private handleRegister(raw: unknown, res: ServerResponse): void {
    const { nodeKey, body } = this.opener!.open<RegisterBody>(raw, 'register');
    const before = this.store!.getNodeByKey(nodeKey);
    const node = this.registry!.register(nodeKey, body);
    this.log(before ? `node ${node.hostname} (${node.ipv4}) re-registered` : `node ${node.hostname} (${node.ipv4}) joined`);
    this.expiredIds.delete(node.id);
    sendJson(res, 200, this.registry!.registerResult(node, this.online(node.id)));
    this.changed();
  }

  private handleMap(raw: unknown, req: IncomingMessage, res: ServerResponse): void {
    const { nodeKey, body } = this.opener!.open<MapBody>(raw, 'map');
    const node = this.knownNode(nodeKey);
    const update: Partial<NodeRecord> = { lastSeenMs: Date.now(), endpoints: validEndpoints(body.endpoints), connected: true };
    this.presumedOnline.delete(node.id);
    if (typeof body.discoKey === 'string') update.discoKey = body.discoKey;
    this.store!.updateNode(node.id, update);
    const t = this.ephemeralTimers.get(node.id);
    if (t) clearTimeout(t);
    this.ephemeralTimers.delete(node.id);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const stream: Stream = { nodeId: node.id, res };
    this.streams.add(stream);
    req.socket.setNoDelay(true);
    this.writeMap(stream);
    this.changed();
    res.on('close', () => {
      this.streams.delete(stream);
      if (this.online(node.id)) return;
      if (this.store?.getNode(node.id)) this.store.updateNode(node.id, { lastSeenMs: Date.now(), connected: false });
      const current = this.store?.getNode(node.id);
      if (current?.ephemeral) this.scheduleEphemeralDelete(node.id);
      this.changed();
    });
  }

  /** For relays' --verify-clients: is this node key a valid member? (Public keys only; nothing secret is revealed.) */
  private handleVerify(url: string, res: ServerResponse): void {
    const key = new URL(url, 'https://x').searchParams.get('nodeKey') ?? '';
    const n = this.store!.getNodeByKey(key);
    if (n && !this.registry!.isExpired(n)) return sendJson(res, 200, { known: true });
    sendJson(res, 404, { known: false });
  }

  private handleEndpoints(raw: unknown, res: ServerResponse): void {
    const { nodeKey, body } = this.opener!.open<EndpointsBody>(raw, 'endpoints');
    const node = this.knownNode(nodeKey);
    const update: Partial<NodeRecord> = { endpoints: validEndpoints(body.endpoints) };
    if (body.homeRelay !== undefined) update.homeRelay = typeof body.homeRelay === 'string' ? body.homeRelay.slice(0, 32) : null;
    if (Date.now() - (node.lastSeenMs ?? 0) > LAST_SEEN_WRITE_MS) update.lastSeenMs = Date.now();
    this.store!.updateNode(node.id, update);
    sendJson(res, 200, { ok: true });
    this.changed();
  }

  private handleLogout(raw: unknown, res: ServerResponse): void {
    const { nodeKey } = this.opener!.open<object>(raw, 'logout');
    const node = this.store!.getNodeByKey(nodeKey);
    if (node) {
      this.store!.deleteNode(node.id);
      this.log(`node ${node.hostname} (${node.ipv4}) logged out`);
    }
    sendJson(res, 200, { ok: true });
    if (node) this.endStreams(node.id, 'NODE_UNKNOWN');
    this.changed();
  }

  private scheduleEphemeralDelete(id: number): void {
    const old = this.ephemeralTimers.get(id);
    if (old) clearTimeout(old);
    const t = setTimeout(() => {
      this.ephemeralTimers.delete(id);
      if (this.online(id)) return;
      const n = this.store?.getNode(id);
      if (n?.ephemeral && this.store!.deleteNode(id)) {
        this.log(`ephemeral node ${n.hostname} (${n.ipv4}) removed after going offline`);
        this.changed();
      }
    }, this.opts.ephemeralGraceMs ?? DEFAULT_EPHEMERAL_GRACE_MS);
    this.ephemeralTimers.set(id, t);
  }

  private checkExpiry(): void {
    const expired = new Set(this.store!.listNodes().filter((n) => this.registry!.isExpired(n)).map((n) => n.id));
    const fresh = [...expired].filter((id) => !this.expiredIds.has(id));
    this.expiredIds = expired;
    for (const id of fresh) this.endStreams(id, 'NODE_EXPIRED');
    if (fresh.length > 0) this.changed();
  }

  /** Tells a node's streams why they end (deleted, expired) and closes them. */
  private endStreams(id: number, reason: 'NODE_UNKNOWN' | 'NODE_EXPIRED'): void {
    for (const s of [...this.streams]) {
      if (s.nodeId !== id) continue;
      s.res.end(JSON.stringify({ type: 'gone', reason }) + '\n');
      this.streams.delete(s);
    }
  }

  /** Something in the network changed: push fresh maps to every stream soon. */
  private changed(): void {
    if (this.broadcastTimer) return;
    this.broadcastTimer = setTimeout(() => {
      this.broadcastTimer = null;
      for (const s of this.streams) this.writeMap(s);
    }, BROADCAST_DELAY_MS);
  }

  private writeMap(s: Stream): void {
    const node = this.store?.getNode(s.nodeId);
    if (!node) return;
    const line: MapLine = { type: 'map', map: this.registry!.mapFor(node, (id) => this.online(id), this.relayMap) };
    s.res.write(JSON.stringify(line) + '\n');
  }

  private writeAll(line: MapLine): void {
    const text = JSON.stringify(line) + '\n';
    for (const s of this.streams) s.res.write(text);
  }
}
