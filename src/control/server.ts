// `meshctl control serve`: the control plane. Nodes register over HTTPS with a
// sealed request, then hold one long-lived map stream; a change to the
// network (join, leave, endpoint, delete, expiry, policy) is pushed, from one
// read of the network, down the streams whose map it changed. Operators reach the same server over a root-only unix socket in the
// state dir (admin-server.ts). Existing tunnels never depend on this server
// being up: nodes keep their last map and reconnect with backoff.
import { readFileSync } from '../util/cjs.js';
import { createHash } from 'node:crypto';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { keyToText } from '../crypto/keys.js';
import { terminalSafe } from '../util/text.js';
import { sourceKey } from '../util/per-source.js';
import { AdminServer } from './admin-server.js';
import { applyDnsSuffix } from './dns.js';
import { autoApprove } from './auto-approve.js';
import { guardConnections, type ConnectionStats } from './connections.js';
import { RateLimitedError, readJson, sendError, sendJson } from './http-util.js';
import { openStateDatabase } from './open-database.js';
import { ControlError, MAP_KEEPALIVE_MS, PATHS, type ControlErrorCode } from './protocol.js';
import type { MapLine, NetworkMap, RelayRegion } from '../netmap/types.js';
import type { SentMap } from './map-changes.js';
import { deltaLine, fullMapLine, type DeltaSent } from './deltas.js';
import type { NetworkSnapshot } from './snapshot.js';
import { Registry } from './registry.js';
import { FIRST_MAP_BYTES_PER_BROADCAST, FirstMapAdmission } from './first-maps.js';
import { boundHeapGrowth } from '../util/heap-growth.js';
import { LineWriter } from './line-writer.js';
import { WHOLE_MAP_BYTES_IN_FLIGHT, WholeMapBudget } from './map-budget.js';
import {
  MAX_RATE_LIMITED_SOURCES,
  SEALED_BURST_PER_SOURCE,
  SEALED_REQUESTS_PER_SEC_PER_SOURCE,
  SourceRateLimiter,
  VERIFY_BURST_PER_SOURCE,
  VERIFY_REQUESTS_PER_SEC_PER_SOURCE,
  type RateLimiterStats,
} from './rate-limit.js';
import { probeRelays } from './relay-probe.js';
import { MAX_SEEN_NONCES, MAX_SEEN_NONCES_PER_KEY, SealedOpener, type OpenedRequest } from './sealed.js';
import { ensureStateDir, loadControlKey, loadOrCreateCertificate, stateFiles } from './state-dir.js';
import { isReplicaStore, ReplicaSync, type ReplicaLimits } from './replica-sync.js';
import { sharedCertificate, sharedControlKey, type SecretStore } from './shared-identity.js';
import type { ControlStore, NodeRecord, StoreTx } from './store.js';
import { parseAdvertiseBody, parseEndpointsBody, parseLogoutBody, parseMapBody, parseRegisterBody, parseVerifyQuery, type PathCounts } from './validate.js';
import { armStreamLiveness, FIRST_MAP_USER_TIMEOUT_MS, firstMapTaken, setStreamUserTimeout, STREAM_USER_TIMEOUT_MS } from './liveness.js';
import { meshPrefixes, recordProtectedTargets } from './routes.js';
import { AdminWeb, type AdminWebLimits } from './web/api.js';
import { listenAdminWeb } from './web/listen.js';

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
  /**
   * Start with a new, empty database although control.key shows a network ran
   * here (`--fresh`); a damaged database is kept aside.
   */
  fresh?: boolean;
  /**
   * Keep the network in this PostgreSQL database (`--db postgres://…`, no
   * password in it) instead of SQLite in the state dir; the state dir still
   * holds the control key, the certificate and the admin socket.
   */
  db?: { url: string; password?: string };
  /** the DNS suffix of node names (`--dns-suffix`); default: the stored one, else mesh.internal */
  dnsSuffix?: string;
  /** new nodes stay pending, in no map, until `control nodes approve` (`--require-approval`) */
  requireApproval?: boolean;
  /** the clock sealed requests' timestamps are checked against */
  now?: () => number;
  limits?: Partial<ControlLimits>;
  /** also serve the admin web (page and /admin/api/) on this IP:port, over HTTPS with the same certificate (`--admin-listen`) */
  adminListen?: { address: string; port: number };
  /** the admin web's bounds (sessions, logins, event streams); tests inject small ones */
  adminWeb?: Partial<AdminWebLimits>;
  logger?: (msg: string) => void;
  /** told of each request when it is answered (metrics.ts); the server keeps no figures for it */
  requestObserver?: RequestObserver;
  /** replicas on one PostgreSQL database: presence leases' time to live and renewal (replica-sync.ts); tests inject small ones */
  replica?: Partial<ReplicaLimits>;
  /**
   * How far V8's heap may grow past what a full collection left live before
   * the next one, in % (process-wide, set at start); null leaves V8's own
   * factor (up to 300 %). Default CONTROL_HEAP_GROWING_PERCENT.
   */
  heapGrowingPercent?: number | null;
}

/**
 * Control's bound on heap growth between full collections: garbage never
 * exceeds what is live. Broadcasts keep their data across many scavenges and
 * promote it (~20-40 MB/s of churn at 5,000 nodes), which V8 otherwise left
 * to pile up to 3x the live heap before collecting (util/heap-growth.ts);
 * 100 % halves that peak for a full collection every few seconds of churn.
 */
export const CONTROL_HEAP_GROWING_PERCENT = 100;

/** The bounded set of routes requests are counted by: a path that is none of them is `other`, never its own label. */
export type ControlRoute = 'key' | 'healthz' | 'verify' | 'register' | 'map' | 'endpoints' | 'advertise' | 'logout' | 'other';

export interface RequestObserver {
  /** `error`: the ControlError the request was refused with, null when it was answered (status < 400) */
  request(route: ControlRoute, seconds: number, status: number, error: ControlErrorCode | null): void;
}

/** What the metrics read at a scrape (metrics.ts): counts from the store and the server's own state. */
export interface ControlMetricsView {
  nodesRegistered: number;
  nodesOnline: number;
  streams: MapStreamStats;
  rateLimit: { sealed: RateLimiterStats; verify: RateLimiterStats };
  connections: ConnectionStats;
}

/** Every bound the server enforces; the defaults are the constants below, tests inject small ones. */
export interface ControlLimits {
  /** open HTTPS connections at once */
  maxConnections: number;
  /** open HTTPS connections at once from one IPv4 address or IPv6 /64 */
  maxConnectionsPerSource: number;
  /** a connection must complete its first request within this long (TLS handshake included) */
  connectionIdleMs: number;
  /** a map stream whose unsent data passes this is closed (the node reconnects and gets a fresh map) */
  mapStreamMaxUnsentBytes: number;
  /** open connections on the admin socket at once */
  adminMaxConnections: number;
  maxSeenNonces: number;
  maxSeenNoncesPerKey: number;
  /** sealed requests per second one source may keep up, and send at once (its token bucket) */
  sealedRequestsPerSecPerSource: number;
  sealedBurstPerSource: number;
  /** /verify lookups per second one source may keep up, and make at once */
  verifyRequestsPerSecPerSource: number;
  verifyBurstPerSource: number;
  /** sources whose buckets are kept (per kind); the least recently seen is dropped beyond it */
  maxRateLimitedSources: number;
  /** map streams: a keepalive line this often */
  mapKeepaliveMs: number;
  /** map streams: unacknowledged data this old closes the connection (TCP_USER_TIMEOUT) */
  streamUserTimeoutMs: number;
  /** the same while the stream's first map is not yet acknowledged (liveness.ts) */
  firstMapUserTimeoutMs: number;
  /** whole first maps one broadcast may write, in bytes; streams beyond it get theirs with the next broadcast */
  firstMapBytesPerBroadcast: number;
  /** whole maps (first or not) built and not yet handed to the kernel, in bytes, over all streams (map-budget.ts) */
  wholeMapBytesInFlight: number;
}

/**
 * One map stream per node plus its short requests, for the networks one server
 * is meant for (5,000 nodes, with room for their bursts of requests after a
 * restart). A held map stream costs ~100 KiB (72 KiB native for its TLS
 * connection and http objects, ~30 KiB of heap; docs/performance.md), so this
 * bounds the listener's share near 800 MiB; a larger network adds replicas.
 */
export const MAX_CONNECTIONS = 8192;
/**
 * Nodes behind one NAT (an office, a campus) share a public address: this lets
 * ~250 of them in while one host cannot take the whole listener.
 */
export const MAX_CONNECTIONS_PER_SOURCE = 256;
/**
 * A TLS handshake and one request take a few round trips: well under 10 s even
 * on a satellite link. A connection that sends nothing for that long is closed.
 */
export const CONNECTION_IDLE_MS = 10_000;
/**
 * A stream is written to only while its socket takes data (pending maps
 * collapse into the latest one), so unsent data is at most about one map. A
 * map is ~0.5-2 KB per node: 16 MiB holds the map of a network several times
 * larger than one server is meant for; a stream beyond it is dropped.
 */
export const MAP_STREAM_MAX_UNSENT_BYTES = 16 * 1024 * 1024;
/** The admin socket is the operator's CLI: a handful of commands at a time. */
export const ADMIN_MAX_CONNECTIONS = 64;
/** Receiving a whole request (headers and up to 64 KB of body) after it started. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Coalesces bursts of changes (three nodes joining at once) into one push, well inside the 1 s goal. */
const BROADCAST_DELAY_MS = 25;
/**
 * A broadcast reads the whole network once (a few ms per thousand nodes), so
 * the next one waits at least as long as the last one took: under a stream of
 * changes broadcasts take at most about half the CPU, and each coalesces more
 * changes instead of falling behind. The wait is capped so a slow read once
 * does not hold later changes back for long.
 */
const MAX_BROADCAST_SPACING_MS = 1000;
/**
 * Broadcasts whose timings are kept for the bench and the operator: at one
 * broadcast per 25 ms under constant churn this is the last minute or so; an
 * entry is a few numbers.
 */
export const MAX_BROADCAST_TIMINGS = 2048;
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
  /** writes to `res`; a long line (a whole map) goes out in pieces (line-writer.ts) */
  out: LineWriter;
  /** write() returned false, or a line is going out in pieces: nothing more is written until it is all handed over and 'drain' */
  blocked: boolean;
  /** a map came due while blocked: the latest map is written at 'drain' (a node only needs the latest) */
  mapPending: boolean;
  /** ended or dropped: nothing more is written */
  closed: boolean;
  /** the last map written (null: none yet), to tell whether a change reaches this node */
  sent: SentMap | null;
  /** the node asked for deltas: after its first whole map it gets only what changed */
  deltas: boolean;
  /** a delta stream: what its node holds (null: no map yet) */
  held: DeltaSent | null;
  /** a delta stream whose node applies packet-filter patches */
  filterPatches: boolean;
  /** its first map is acknowledged: the short liveness timeout applies (until then FIRST_MAP_USER_TIMEOUT_MS) */
  firstMapTaken: boolean;
  /** the whole-map budget this stream's unsent whole maps hold, given back when each is flushed or the stream closes */
  holds: Set<() => void>;
}

/** When one broadcast's stages ended, in ms since the epoch (Date.now(), to compare with other processes' clocks). */
export interface BroadcastTiming {
  /** the change count of its snapshot (the `seq` of the lines it wrote) */
  seq: number;
  /** the first change after the previous broadcast asked for this one */
  queuedAt: number;
  startAt: number;
  /** the network read (snapshot) was taken */
  snapshotAt: number;
  /** every line of it was built and handed to its stream's socket */
  writtenAt: number;
  /** the last of its lines was flushed to the kernel (null: not yet, or none written) */
  flushedAt: number | null;
  deltas: number;
  wholeMaps: number;
  wholeMapBytes: number;
  /** whole maps held back to a later broadcast by the in-flight budget */
  deferredWholeMaps: number;
}

export interface MapStreamStats {
  streams: { nodeId: number; unsentBytes: number; blocked: boolean }[];
  /** maps not written because a newer one replaced them while the stream was blocked */
  coalesced: number;
  /** streams closed because their unsent data passed the limit */
  dropped: number;
  /** streams closed because the same node opened a new one */
  replaced: number;
  /** map lines written, and their bytes (whole maps and deltas) */
  mapsWritten: number;
  mapBytes: number;
  /** of those, deltas, and their bytes */
  deltasWritten: number;
  deltaBytes: number;
  /** whole maps sent to a delta stream after its first (it fell too far behind, or a delta would be as large) */
  deltaResyncs: number;
  /** first maps held back to a later broadcast (first-maps.ts) */
  deferredFirstMaps: number;
  /** whole maps held back to a later broadcast because the bytes of those not yet sent reached the budget (map-budget.ts) */
  deferredWholeMaps: number;
  /** whole-map bytes built and not yet handed to the kernel, now and at most */
  wholeMapBytesInFlight: number;
  peakWholeMapBytesInFlight: number;
}

export class ControlServer {
  private server: Server | null = null;
  private admin: AdminServer | null = null;
  private web: AdminWeb | null = null;
  private webServer: Server | null = null;
  /** the port --admin-listen bound (0: none) */
  adminWebPort = 0;
  private store: ControlStore | null = null;
  private registry: Registry | null = null;
  private opener: SealedOpener | null = null;
  /** one map stream per node: a new one replaces the old */
  private readonly streams = new Map<number, Stream>();
  private readonly limits: ControlLimits;
  private readonly sealedRate: SourceRateLimiter;
  private readonly verifyRate: SourceRateLimiter;
  private connStats: ConnectionStats | null = null;
  private readonly streamCounters = {
    coalesced: 0,
    dropped: 0,
    replaced: 0,
    mapsWritten: 0,
    mapBytes: 0,
    deltasWritten: 0,
    deltaBytes: 0,
    deltaResyncs: 0,
    deferredFirstMaps: 0,
  };
  private readonly firstMaps: FirstMapAdmission;
  private readonly wholeMaps: WholeMapBudget;
  /** asked before any whole map is built (one function for every stream of every broadcast) */
  private readonly admitWhole = (): boolean => this.wholeMaps.admit();
  /** the broadcasts' stage times, the latest MAX_BROADCAST_TIMINGS */
  private readonly timings: BroadcastTiming[] = [];
  /** when the broadcast now due was first asked for */
  private broadcastQueuedAt = 0;
  /** the broadcast being written (its lines' flush callbacks count down `unflushed`) */
  private current: { timing: BroadcastTiming; unflushed: number } | null = null;
  /** why a request was refused, for the request observer */
  private readonly refusals = new WeakMap<ServerResponse, ControlErrorCode>();
  private readonly ephemeralTimers = new Map<number, NodeJS.Timeout>();
  private broadcastTimer: NodeJS.Timeout | null = null;
  /** how long the last broadcast took: the next waits at least that long */
  private lastBroadcastMs = 0;
  /** on a shared database: follows the other replicas' changes and shares presence with them */
  replicas: ReplicaSync | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private expiredIds = new Set<number>();
  private readonly presumedOnline = new Set<number>();
  /** stop() has begun: map streams closing now are the server's doing, not their nodes going offline */
  private stopping = false;
  /** node id → the path counts it last reported with its endpoints; at most one per node, dropped when it is offline */
  private readonly pathReports = new Map<number, PathCounts>();
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
    this.limits = {
      maxConnections: MAX_CONNECTIONS,
      maxConnectionsPerSource: MAX_CONNECTIONS_PER_SOURCE,
      connectionIdleMs: CONNECTION_IDLE_MS,
      mapStreamMaxUnsentBytes: MAP_STREAM_MAX_UNSENT_BYTES,
      adminMaxConnections: ADMIN_MAX_CONNECTIONS,
      maxSeenNonces: MAX_SEEN_NONCES,
      maxSeenNoncesPerKey: MAX_SEEN_NONCES_PER_KEY,
      sealedRequestsPerSecPerSource: SEALED_REQUESTS_PER_SEC_PER_SOURCE,
      sealedBurstPerSource: SEALED_BURST_PER_SOURCE,
      verifyRequestsPerSecPerSource: VERIFY_REQUESTS_PER_SEC_PER_SOURCE,
      verifyBurstPerSource: VERIFY_BURST_PER_SOURCE,
      maxRateLimitedSources: MAX_RATE_LIMITED_SOURCES,
      mapKeepaliveMs: MAP_KEEPALIVE_MS,
      streamUserTimeoutMs: STREAM_USER_TIMEOUT_MS,
      firstMapUserTimeoutMs: FIRST_MAP_USER_TIMEOUT_MS,
      firstMapBytesPerBroadcast: FIRST_MAP_BYTES_PER_BROADCAST,
      wholeMapBytesInFlight: WHOLE_MAP_BYTES_IN_FLIGHT,
      ...opts.limits,
    };
    this.firstMaps = new FirstMapAdmission(this.limits.firstMapBytesPerBroadcast);
    // the maps held back go out with the broadcast that follows once earlier ones were sent
    this.wholeMaps = new WholeMapBudget(this.limits.wholeMapBytesInFlight, () => this.changed());
    const l = this.limits;
    this.sealedRate = new SourceRateLimiter({ perSecond: l.sealedRequestsPerSecPerSource, burst: l.sealedBurstPerSource, maxSources: l.maxRateLimitedSources });
    this.verifyRate = new SourceRateLimiter({ perSecond: l.verifyRequestsPerSecPerSource, burst: l.verifyBurstPerSource, maxSources: l.maxRateLimitedSources });
  }

  /** The per-source rate limiters' tables and refusals. */
  rateLimitStats(): { sealed: RateLimiterStats; verify: RateLimiterStats } {
    return { sealed: this.sealedRate.stats(), verify: this.verifyRate.stats() };
  }

  /** The HTTPS listener's connection counters. */
  connectionStats(): ConnectionStats {
    return { ...(this.connStats ?? { open: 0, refusedOverTotal: 0, refusedOverSource: 0, closedIdle: 0 }) };
  }

  /** The map streams' state: unsent bytes per stream, and how often maps were coalesced or streams dropped. */
  mapStreamStats(): MapStreamStats {
    const streams = [...this.streams.values()].map((s) => ({ nodeId: s.nodeId, unsentBytes: s.out.unsentBytes, blocked: s.blocked }));
    return {
      streams,
      ...this.streamCounters,
      deferredWholeMaps: this.wholeMaps.deferred,
      wholeMapBytesInFlight: this.wholeMaps.bytes,
      peakWholeMapBytesInFlight: this.wholeMaps.peak,
    };
  }

  /** The stage times of the latest broadcasts (at most MAX_BROADCAST_TIMINGS), oldest first. */
  broadcastTimings(): BroadcastTiming[] {
    return this.timings.map((t) => ({ ...t }));
  }

  /** Node counts and the server's counters, for the metrics endpoint (read at each scrape). */
  metricsView(): ControlMetricsView {
    let online = this.streams.size;
    for (const id of this.presumedOnline) if (!this.streams.has(id)) online++;
    // nodes streaming from other replicas on a shared database
    for (const id of this.replicas?.remoteOnline() ?? []) if (!this.streams.has(id) && !this.presumedOnline.has(id)) online++;
    return {
      nodesRegistered: this.registry?.nodes().length ?? 0,
      nodesOnline: online,
      streams: this.mapStreamStats(),
      rateLimit: this.rateLimitStats(),
      connections: this.connectionStats(),
    };
  }

  async start(): Promise<void> {
    this.stopping = false;
    if (this.server) return;
    const growth = this.opts.heapGrowingPercent === undefined ? CONTROL_HEAP_GROWING_PERCENT : this.opts.heapGrowingPercent;
    if (growth !== null) boundHeapGrowth(growth);
    const { stateDir } = this.opts;
    ensureStateDir(stateDir);
    if (this.opts.db) {
      const { PgStore } = await import('./pg-store.js');
      this.store = await PgStore.open(this.opts.db.url, { password: this.opts.db.password });
      this.log(`network kept in ${this.store.description}`);
    } else {
      // before the control key is made: a key without a database is a lost network, not a first start
      this.store = openStateDatabase(stateDir, this.opts.fresh === true, this.log);
    }
    try {
      await this.startOn(this.store);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startOn(store: ControlStore): Promise<void> {
    const { stateDir } = this.opts;
    // replicas on one database show nodes one identity, kept in the database (shared-identity.ts)
    const shared = 'sharedSecret' in store ? (store as ControlStore & SecretStore) : null;
    const ck = shared ? await sharedControlKey(shared, stateDir) : loadControlKey(stateDir);
    this.publicKey = ck.publicKey;
    this.opener = new SealedOpener(ck.privateKey, store, {
      now: this.opts.now,
      maxNonces: this.limits.maxSeenNonces,
      maxNoncesPerKey: this.limits.maxSeenNoncesPerKey,
    });
    // before the registry reads the name service for maps
    const dns = await applyDnsSuffix(store, this.opts.dnsSuffix);
    if (dns.replaced) this.log(`DNS suffix changed from ${dns.replaced} to ${dns.suffix}: nodes get the new names with their next map`);
    const registry = await Registry.open(store, { keyExpiryMs: this.opts.keyExpiryMs ?? null, requireApproval: this.opts.requireApproval === true });
    this.registry = registry;
    let cert: string;
    let key: string;
    if (this.opts.tlsCert && this.opts.tlsKey) {
      cert = readFileSync(this.opts.tlsCert, 'utf8');
      key = readFileSync(this.opts.tlsKey, 'utf8');
    } else {
      const c = shared ? await sharedCertificate(shared, stateDir, this.opts.host) : loadOrCreateCertificate(stateDir, this.opts.host);
      if (c.created) this.log(`created a self-signed certificate in ${stateFiles(stateDir).cert}; clients need it: meshctl control ca --state-dir ${stateDir}`);
      cert = c.cert;
      key = c.key;
    }
    this.certPem = cert;
    const idleMs = this.limits.connectionIdleMs;
    const server = createHttpsServer(
      {
        cert,
        key,
        // a second request on a kept-alive connection gets the same allowance for its headers
        headersTimeout: idleMs,
        requestTimeout: Math.max(REQUEST_TIMEOUT_MS, idleMs + 1),
        connectionsCheckingInterval: Math.min(1000, idleMs),
      },
      (req, res) => void this.observed(req, res),
    );
    this.connStats = guardConnections(server, { maxConnections: this.limits.maxConnections, maxPerSource: this.limits.maxConnectionsPerSource, idleMs });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(`${this.opts.host}:${this.opts.port}`, err)));
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    this.boundPort = (server.address() as { port: number }).port;
    const adminLimits = { maxConnections: this.limits.adminMaxConnections, maxPerSource: null, idleMs };
    const endStreams = (id: number, reason: 'NODE_UNKNOWN' | 'NODE_EXPIRED') => this.endStreams(id, reason);
    this.admin = new AdminServer(
      stateFiles(stateDir).adminSocket,
      registry,
      () => this.changed(),
      (id) => this.online(id),
      endStreams,
      adminLimits,
    );
    await this.admin.start();
    this.web = new AdminWeb({
      registry: this.registry,
      changed: () => this.changed(),
      online: (id) => this.online(id),
      paths: (id) => this.pathsOf(id),
      endStreams,
      relays: () => this.relayMap,
      certPem: () => this.certPem,
      log: this.log,
      limits: this.opts.adminWeb,
    });
    if (this.opts.adminListen) {
      this.webServer = await listenAdminWeb(this.opts.adminListen, { cert, key }, this.web, { ...adminLimits, maxPerSource: null });
      this.adminWebPort = (this.webServer.address() as { port: number }).port;
      this.log(`admin page on https://${hostPort(this.opts.adminListen.address, this.adminWebPort)}/admin/`);
    }
    // another replica on a shared database changed the network: read what its change-log rows name and push what changed
    if (isReplicaStore(store)) {
      this.replicas = new ReplicaSync(
        store,
        { registry, held: () => [...this.streams.keys()], applied: () => this.replicaApplied(), log: this.log },
        this.opts.replica,
      );
      await this.replicas.start();
    }
    this.keepaliveTimer = setInterval(() => this.writeAll({ type: 'keepalive' }), this.limits.mapKeepaliveMs);
    this.expiryTimer = setInterval(() => this.checkExpiry(), EXPIRY_CHECK_MS);
    for (const n of registry.nodes()) {
      if (n.connected) this.presumedOnline.add(n.id);
      else if (n.ephemeral) this.scheduleEphemeralDelete(n.id);
    }
    this.graceTimer = setTimeout(
      () => void this.endGrace().catch((err: Error) => this.log(`marking nodes offline failed: ${err.message}`)),
      RECONNECT_GRACE_MS,
    );
    this.relayMap = this.opts.relays ?? [];
    // what an approved subnet route may not capture, also for approvals made while this server is stopped
    await recordProtectedTargets(
      registry.store,
      this.opts.host,
      this.relayMap.map((r) => r.url),
    );
    if (this.relayMap.length) {
      await this.refreshRelays();
      this.relayTimer = setInterval(() => void this.refreshRelays(), RELAY_PROBE_MS);
    }
    this.expiredIds = new Set(
      registry
        .nodes()
        .filter((n) => registry.isExpired(n))
        .map((n) => n.id),
    );
    this.log(`control server listening on https://${this.opts.host}:${this.boundPort}, control key ${keyToText(ck.publicKey)}`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of [this.broadcastTimer, this.keepaliveTimer, this.expiryTimer, this.graceTimer, this.relayTimer, this.relayRetryTimer])
      if (t) clearTimeout(t);
    for (const t of this.ephemeralTimers.values()) clearTimeout(t);
    this.ephemeralTimers.clear();
    // this replica's leases go now, so the others show its nodes offline until they reconnect there
    await this.replicas?.shutdown([...this.streams.keys()]);
    this.replicas = null;
    for (const s of this.streams.values()) {
      s.closed = true;
      s.res.destroy();
    }
    this.streams.clear();
    await this.admin?.stop();
    this.admin = null;
    this.web?.stop();
    this.web = null;
    if (this.webServer) {
      this.webServer.closeAllConnections();
      await new Promise<void>((r) => this.webServer!.close(() => r()));
      this.webServer = null;
    }
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((r) => this.server!.close(() => r()));
    }
    this.server = null;
    const store = this.store;
    this.store = null;
    await store?.close();
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
    return this.presumedOnline.has(id) || this.streams.has(id) || this.replicas?.online(id) === true;
  }

  /** Another replica's changes are in the copy: streams of nodes deleted there end here, and maps go out. */
  private replicaApplied(): void {
    if (!this.registry) return;
    const known = new Set(this.registry.nodes().map((n) => n.id));
    for (const id of [...this.streams.keys()]) if (!known.has(id)) this.endStreams(id, 'NODE_UNKNOWN');
    this.changed();
  }

  /** What an online node last reported of its paths; null when it has not, or is offline (the report is dropped). */
  private pathsOf(id: number): PathCounts | null {
    if (this.online(id)) return this.pathReports.get(id) ?? null;
    this.pathReports.delete(id);
    return null;
  }

  /** Nodes that did not come back after a restart are offline after all. */
  private async endGrace(): Promise<void> {
    this.graceTimer = null;
    const gone = [...this.presumedOnline];
    this.presumedOnline.clear();
    for (const id of gone) {
      if (this.online(id) || !this.registry) continue;
      this.pathReports.delete(id);
      const n = await this.registry.store.getNode(id);
      if (!n || !this.registry) continue;
      await this.registry.store.updateNode(id, { connected: false });
      if (n.ephemeral) this.scheduleEphemeralDelete(id);
    }
    if (gone.length) this.changed();
  }

  /** A request, timed and reported to the observer when there is one. */
  private async observed(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const o = this.opts.requestObserver;
    if (!o) return this.handle(req, res);
    const started = performance.now();
    await this.handle(req, res);
    o.request(routeOf(req.method, req.url), (performance.now() - started) / 1000, res.statusCode, this.refusals.get(res) ?? null);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      if (this.web && AdminWeb.owns(path)) return await this.web.handle(req, res);
      if (req.method === 'GET') {
        const length = req.headers['content-length'];
        if ((length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined) {
          throw new ControlError('BAD_REQUEST', 'a GET request carries no body');
        }
        // the key and health endpoints take no input at all
        if (url === PATHS.key) return sendJson(res, 200, { publicKey: keyToText(this.publicKey!) });
        if (url === '/healthz') return sendJson(res, 200, { ok: true });
        if (path === PATHS.verify) {
          this.checkRate(this.verifyRate, req, 'verify lookups');
          return await this.handleVerify(q < 0 ? '' : url.slice(q + 1), res);
        }
        throw new ControlError('BAD_REQUEST', `no GET ${clip(url)} here`);
      }
      if (req.method !== 'POST') throw new ControlError('BAD_REQUEST', `no ${clip(req.method ?? '')} ${clip(url)} here`);
      const route = POST_ROUTES.get(url);
      if (!route) throw new ControlError('BAD_REQUEST', `no POST ${clip(url)} here`);
      // before the body is read: a refused request costs no crypto and no database work
      this.checkRate(this.sealedRate, req, 'requests');
      const raw = await readJson(req);
      switch (route) {
        case 'register':
          return await this.handleRegister(raw, res);
        case 'map':
          return await this.handleMap(raw, req, res);
        case 'endpoints':
          return await this.handleEndpoints(raw, res);
        case 'advertise':
          return await this.handleAdvertise(raw, res);
        default:
          return await this.handleLogout(raw, res);
      }
    } catch (err) {
      this.refusals.set(res, err instanceof ControlError ? err.code : 'INTERNAL');
      if (err instanceof ControlError) return sendError(res, err);
      // the detail goes to the log, not to whoever sent the request
      this.log(`error on ${clip(req.method ?? '')} ${clip(req.url ?? '')}: ${(err as Error).message}`);
      sendError(res, new ControlError('INTERNAL', 'internal error in the control server (its log has the detail)'));
    }
  }

  /** Takes a token from the request source's bucket, or refuses the request with the wait until the next one. */
  private checkRate(limiter: SourceRateLimiter, req: IncomingMessage, what: string): void {
    const waitMs = limiter.take(sourceKey(req.socket.remoteAddress));
    if (waitMs === 0) return;
    const sec = Math.max(1, Math.ceil(waitMs / 1000));
    throw new RateLimitedError(`too many ${what} from your address: try again in ${sec} s`, sec);
  }

  private async knownNode(store: StoreTx, nodeKey: string): Promise<NodeRecord> {
    const n = await store.getNodeByKey(nodeKey);
    if (!n) throw new ControlError('NODE_UNKNOWN', 'this node is not registered (deleted or logged out): run `meshctl up --auth-key KEY`');
    if (this.registry!.isExpired(n)) throw new ControlError('NODE_EXPIRED', 'node key expired: run `meshctl up --auth-key KEY` to re-authenticate');
    return n;
  }

  private async handleRegister(raw: unknown, res: ServerResponse): Promise<void> {
    const mesh = meshPrefixes(this.registry!.ipv6Prefix);
    const opened = await this.opener!.open(raw, 'register', (o) => parseRegisterBody(o, mesh));
    const before = await this.registry!.store.getNodeByKey(opened.nodeKey);
    // the nonce is remembered only once the registration is accepted (a refused auth key changes nothing)
    const node = await this.registry!.register(opened.nodeKey, opened.body, (tx) => this.opener!.accept(opened, tx));
    this.log(
      before
        ? `node ${node.hostname} (${node.ipv4}) re-registered`
        : `node ${node.hostname} (${node.ipv4}) joined${node.pending ? '; it waits for `meshctl control nodes approve`' : ''}`,
    );
    this.expiredIds.delete(node.id);
    sendJson(res, 200, this.registry!.registerResult(node, this.online(node.id)));
    this.changed();
    this.autoApprove([node.id]);
  }

  /** Approves what the policy's autoApprovers allow of what these nodes advertise; maps change with the next broadcast. */
  private autoApprove(ids: number[]): void {
    void autoApprove(this.registry!, ids)
      .then((lines) => {
        for (const l of lines) this.log(l);
        if (lines.length && this.store) this.changed();
      })
      .catch((err: Error) => this.log(`auto-approval failed: ${err.message}`));
  }

  private async handleMap(raw: unknown, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const opened = await this.opener!.open(raw, 'map', parseMapBody);
    const { body } = opened;
    const waiting = await this.registry!.store.getNodeByKey(opened.nodeKey);
    if (waiting?.pending) {
      throw new ControlError('NODE_PENDING', `waiting for approval at the control server: an admin runs \`meshctl control nodes approve ${waiting.hostname}\``);
    }
    const node = await this.actAsKnownNode(opened, (tx, n) =>
      tx.updateNode(n.id, { lastSeenMs: Date.now(), endpoints: body.endpoints, discoKey: body.discoKey, connected: true }),
    );
    if (this.stopping) {
      // the server began stopping while this stream was being recorded: it gets no map (one built now would show every
      // peer offline, their streams being closed) and is cut like the others; the node stays recorded connected, as
      // stop() leaves every node, and reconnects to the next server
      req.socket.destroy();
      return;
    }
    if (req.socket.destroyed) {
      // the node went away while its stream was being recorded: it has none
      await this.streamEnded(node.id);
      return;
    }
    this.presumedOnline.delete(node.id);
    const t = this.ephemeralTimers.get(node.id);
    if (t) clearTimeout(t);
    this.ephemeralTimers.delete(node.id);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const writable = (): void => {
      // a whole map still going out in pieces keeps the stream blocked
      if (stream.out.busy) return;
      stream.blocked = false;
      // the map that came due is built with the next broadcast, from the network as it is then
      if (stream.mapPending && !stream.closed) this.changed();
    };
    const stream: Stream = {
      nodeId: node.id,
      res,
      out: new LineWriter(res, writable),
      blocked: false,
      mapPending: false,
      closed: false,
      sent: null,
      deltas: body.deltas,
      held: null,
      filterPatches: body.filterPatches,
      firstMapTaken: false,
      holds: new Set(),
    };
    // one stream per node: the newest wins (the old one is a dead path the node gave up on, or a duplicate)
    const old = this.streams.get(node.id);
    this.streams.set(node.id, stream);
    this.replicas?.claim(node.id);
    if (old) {
      this.streamCounters.replaced++;
      this.closeStream(old, null);
    }
    req.socket.setNoDelay(true);
    // a cut link ends the stream within seconds (the node goes offline and its routes fail over), not after TCP's minutes of retries
    // until its first map is in, a slow reader is not a dead one (liveness.ts); the keepalive tick shortens it then
    if (!armStreamLiveness(req.socket, this.limits.firstMapUserTimeoutMs)) this.log(`map stream of node ${node.id}: TCP_USER_TIMEOUT not set`);
    res.on('drain', writable);
    res.on('close', () => {
      stream.closed = true;
      // its unsent whole maps will not be sent: the budget they held is free
      for (const release of stream.holds) release();
      stream.holds.clear();
      if (this.streams.get(node.id) === stream) {
        this.streams.delete(node.id);
        this.replicas?.release(node.id);
      }
      // streams this server closes as it stops keep their nodes connected: the next start presumes them online while they reconnect
      if (this.stopping || this.online(node.id)) return;
      void this.streamEnded(node.id).catch((err: Error) => this.log(`recording node ${node.id} offline failed: ${err.message}`));
    });
    // the first map goes out with the next broadcast (within BROADCAST_DELAY_MS), built with those of the other streams
    this.changed();
  }

  /** A node's map stream ended and it has no other: it is recorded offline (an ephemeral one goes after its grace). */
  private async streamEnded(id: number): Promise<void> {
    this.pathReports.delete(id);
    const store = this.registry?.store;
    if (!store || !(await store.getNode(id))) return;
    await store.updateNode(id, { lastSeenMs: Date.now(), connected: false });
    const current = await store.getNode(id);
    if (current?.ephemeral) this.scheduleEphemeralDelete(id);
    this.changed();
  }

  /** For relays' --verify-clients: is this node key a valid member? (Public keys only; nothing secret is revealed.) */
  private async handleVerify(query: string, res: ServerResponse): Promise<void> {
    const key = parseVerifyQuery(query);
    const n = await this.registry!.store.getNodeByKey(key);
    if (n && !n.pending && !this.registry!.isExpired(n)) return sendJson(res, 200, { known: true });
    sendJson(res, 404, { known: false });
  }

  private async handleEndpoints(raw: unknown, res: ServerResponse): Promise<void> {
    const opened = await this.opener!.open(raw, 'endpoints', parseEndpointsBody);
    const { body } = opened;
    const node = await this.actAsKnownNode(opened, (tx, node) => {
      const update: Partial<NodeRecord> = { endpoints: body.endpoints };
      if (body.homeRelay !== undefined) update.homeRelay = body.homeRelay;
      if (Date.now() - (node.lastSeenMs ?? 0) > LAST_SEEN_WRITE_MS) update.lastSeenMs = Date.now();
      return tx.updateNode(node.id, update);
    });
    // live state, kept in memory only: one entry per known node, dropped when it goes offline
    if (body.paths) this.pathReports.set(node.id, body.paths);
    sendJson(res, 200, { ok: true });
    this.changed();
  }

  /** What the node advertises (routes, exit node) replaces what it advertised before; approved routes change in maps at once. */
  private async handleAdvertise(raw: unknown, res: ServerResponse): Promise<void> {
    const mesh = meshPrefixes(this.registry!.ipv6Prefix);
    const opened = await this.opener!.open(raw, 'advertise', (o) => parseAdvertiseBody(o, mesh));
    const { body } = opened;
    const node = await this.actAsKnownNode(opened, (tx, n) => tx.updateNode(n.id, { advertisedRoutes: body.routes, advertisedExit: body.exitNode }));
    sendJson(res, 200, { ok: true });
    this.changed();
    this.autoApprove([node.id]);
  }

  private async handleLogout(raw: unknown, res: ServerResponse): Promise<void> {
    const opened = await this.opener!.open(raw, 'logout', parseLogoutBody);
    const store = this.registry!.store;
    // a logout for a key with no node changes nothing: it is answered without a transaction or a nonce
    if (!(await store.getNodeByKey(opened.nodeKey))) return sendJson(res, 200, { ok: true });
    const node = await store.transaction(async (tx) => {
      const n = await tx.getNodeByKey(opened.nodeKey);
      if (!n) return null;
      await this.opener!.accept(opened, tx);
      await tx.deleteNode(n.id);
      return n;
    });
    if (node) this.log(`node ${node.hostname} (${node.ipv4}) logged out`);
    sendJson(res, 200, { ok: true });
    if (node) this.endStreams(node.id, 'NODE_UNKNOWN');
    this.changed();
  }

  /**
   * For a request that acts on its own node: the node must exist and be valid
   * (else NODE_UNKNOWN or NODE_EXPIRED, with nothing written and no nonce kept),
   * then the nonce is remembered and `act` writes, all in one transaction.
   */
  private async actAsKnownNode(opened: OpenedRequest<unknown>, act: (tx: StoreTx, n: NodeRecord) => Promise<void>): Promise<NodeRecord> {
    const store = this.registry!.store;
    // checked first outside a transaction too: a request from a key with no valid node begins none
    await this.knownNode(store, opened.nodeKey);
    return store.transaction(async (tx) => {
      const node = await this.knownNode(tx, opened.nodeKey);
      await this.opener!.accept(opened, tx);
      await act(tx, node);
      return node;
    });
  }

  private scheduleEphemeralDelete(id: number): void {
    const old = this.ephemeralTimers.get(id);
    if (old) clearTimeout(old);
    const t = setTimeout(() => {
      this.ephemeralTimers.delete(id);
      if (this.online(id)) return;
      void this.deleteEphemeral(id).catch((err: Error) => this.log(`removing ephemeral node ${id} failed: ${err.message}`));
    }, this.opts.ephemeralGraceMs ?? DEFAULT_EPHEMERAL_GRACE_MS);
    this.ephemeralTimers.set(id, t);
  }

  private async deleteEphemeral(id: number): Promise<void> {
    const store = this.registry?.store;
    const n = await store?.getNode(id);
    if (n?.ephemeral && (await store!.deleteNode(id))) {
      this.log(`ephemeral node ${n.hostname} (${n.ipv4}) removed after going offline`);
      this.changed();
    }
  }

  private checkExpiry(): void {
    const expired = new Set(
      this.registry!.nodes()
        .filter((n) => this.registry!.isExpired(n))
        .map((n) => n.id),
    );
    const fresh = [...expired].filter((id) => !this.expiredIds.has(id));
    this.expiredIds = expired;
    for (const id of fresh) this.endStreams(id, 'NODE_EXPIRED');
    if (fresh.length > 0) this.changed();
  }

  /** Tells a node's stream why it ends (deleted, expired) and closes it. */
  private endStreams(id: number, reason: 'NODE_UNKNOWN' | 'NODE_EXPIRED'): void {
    const s = this.streams.get(id);
    if (!s) return;
    this.streams.delete(id);
    this.closeStream(s, JSON.stringify({ type: 'gone', reason }) + '\n');
  }

  /** Ends a stream with an optional last line; one that is not taking data is cut instead of waiting on it. */
  private closeStream(s: Stream, last: string | null): void {
    if (s.closed) return;
    s.closed = true;
    if (s.blocked) s.res.destroy();
    else if (last) s.res.end(last);
    else s.res.end();
  }

  /** Something in the network changed: push fresh maps, soon, to the streams whose map it changed. */
  private changed(): void {
    this.web?.notify();
    // a stopping server writes no more maps: its streams are being closed, so every peer would show offline
    if (this.broadcastTimer || this.stopping) return;
    const delay = Math.max(BROADCAST_DELAY_MS, Math.min(MAX_BROADCAST_SPACING_MS, this.lastBroadcastMs));
    this.broadcastQueuedAt = Date.now();
    this.broadcastTimer = setTimeout(() => {
      this.broadcastTimer = null;
      // stopped, or no stream to write to (the next snapshot is compared with the last one whenever it is taken)
      if (!this.store || !this.registry || this.streams.size === 0) return;
      const t0 = performance.now();
      const startAt = Date.now();
      // one read of the network for every map of this broadcast
      const snap = this.registry.snapshot((id) => this.online(id), this.relayMap);
      const timing: BroadcastTiming = {
        seq: snap.seq,
        queuedAt: this.broadcastQueuedAt,
        startAt,
        snapshotAt: Date.now(),
        writtenAt: 0,
        flushedAt: null,
        deltas: 0,
        wholeMaps: 0,
        wholeMapBytes: 0,
        deferredWholeMaps: 0,
      };
      const deferred0 = this.wholeMaps.deferred;
      const current = { timing, unflushed: 0 };
      this.current = current;
      this.firstMaps.begin();
      for (const s of this.streams.values()) this.pushMap(s, snap);
      this.current = null;
      timing.writtenAt = Date.now();
      timing.deferredWholeMaps = this.wholeMaps.deferred - deferred0;
      if (current.unflushed === 0 && timing.deltas + timing.wholeMaps > 0) timing.flushedAt = timing.writtenAt;
      this.timings.push(timing);
      if (this.timings.length > MAX_BROADCAST_TIMINGS) this.timings.shift();
      this.lastBroadcastMs = performance.now() - t0;
      // streams whose first map did not fit this broadcast's budget get it with the next
      if (this.firstMaps.deferred) this.changed();
    }, delay);
  }

  /**
   * Writes the node's map from `snap` if a change since its last map may have
   * altered it and the new line differs from the last one sent; while the
   * stream is not taking data, marks a map due for 'drain' instead.
   */
  private pushMap(s: Stream, snap: NetworkSnapshot): void {
    if (s.closed) return;
    const node = snap.node(s.nodeId);
    // an expired or deleted node gets no more maps: its stream is ended with the reason
    if (!node) return;
    if (s.deltas) return this.pushDelta(s, snap, node);
    const visible = snap.visibleTo(s.nodeId);
    const due = s.mapPending || this.registry!.changes.mayHaveChanged(s.nodeId, s.sent, visible);
    if (s.blocked) {
      if (this.dropIfOverLimit(s)) return;
      if (!due) return;
      if (s.mapPending) this.streamCounters.coalesced++;
      s.mapPending = true;
      return;
    }
    if (!due || this.deferFirst(s, s.sent === null)) return;
    // the in-flight budget is full: the map stays due and is built with a later broadcast
    if (!this.wholeMaps.admit()) {
      s.mapPending = true;
      return;
    }
    s.mapPending = false;
    const line = snap.lineFor(node);
    const digest = createHash('sha256').update(line).digest('base64');
    const same = s.sent?.digest === digest;
    s.sent = { seq: snap.seq, visible, digest };
    if (same) return;
    const bytes = Buffer.byteLength(line);
    this.firstMaps.spend(bytes);
    this.streamCounters.mapsWritten++;
    this.streamCounters.mapBytes += bytes;
    this.writeLine(s, line, bytes, true);
  }

  /** Writes a map line or delta, counting it in this broadcast's timing and, for a whole map, against the in-flight budget until it is flushed. */
  private writeLine(s: Stream, line: string, bytes: number, whole: boolean): void {
    const current = this.current;
    let release: (() => void) | null = null;
    if (whole) {
      const give = this.wholeMaps.take(bytes);
      release = () => {
        s.holds.delete(release!);
        give();
      };
      s.holds.add(release);
    }
    if (current) {
      if (whole) {
        current.timing.wholeMaps++;
        current.timing.wholeMapBytes += bytes;
      } else current.timing.deltas++;
      current.unflushed++;
    }
    const onSent = (): void => {
      release?.();
      if (current && --current.unflushed === 0) current.timing.flushedAt = Date.now();
    };
    if (!s.out.write(line, bytes, release || current ? onSent : undefined)) s.blocked = true;
  }

  /**
   * A delta stream: its first whole map, then the delta from what its node
   * holds. While it is not taking data nothing is queued: at 'drain' one delta
   * covers every change since (or a whole map when the change log no longer
   * reaches back to what the node holds).
   */
  private pushDelta(s: Stream, snap: NetworkSnapshot, node: NodeRecord): void {
    if (s.blocked) {
      if (this.dropIfOverLimit(s)) return;
      if (s.held?.at === snap.seq) return;
      if (s.mapPending) this.streamCounters.coalesced++;
      s.mapPending = true;
      return;
    }
    const first = s.held === null;
    if (this.deferFirst(s, first)) return;
    // a whole map over the in-flight budget stays due, and the node keeps what it holds: no delta goes before that map
    const admitWhole = this.admitWhole;
    if (first && !admitWhole()) {
      s.mapPending = true;
      return;
    }
    const r = first ? fullMapLine(snap, node) : deltaLine(snap, this.registry!.changes, node, s.held!, { filterPatches: s.filterPatches, admitWhole });
    if (r.deferred) {
      s.mapPending = true;
      return;
    }
    s.mapPending = false;
    s.held = r.sent;
    if (r.line === null) return;
    const bytes = Buffer.byteLength(r.line);
    this.streamCounters.mapsWritten++;
    this.streamCounters.mapBytes += bytes;
    if (!r.full) {
      this.streamCounters.deltasWritten++;
      this.streamCounters.deltaBytes += bytes;
    } else {
      this.firstMaps.spend(bytes);
      if (!first) this.streamCounters.deltaResyncs++;
    }
    this.writeLine(s, r.line, bytes, r.full);
  }

  /** A stream's first map over this broadcast's budget waits for the next broadcast (first-maps.ts). */
  private deferFirst(s: Stream, first: boolean): boolean {
    if (!first || this.firstMaps.admit()) return false;
    s.mapPending = true;
    this.streamCounters.deferredFirstMaps++;
    return true;
  }

  /**
   * The maps of nodes `ids` as the network stands now, from one snapshot, for
   * checking what the streams delivered (the bench); nodes no map shows are left out.
   */
  mapsNow(ids: readonly number[]): Map<number, NetworkMap> {
    const out = new Map<number, NetworkMap>();
    if (!this.registry) return out;
    const snap = this.registry.snapshot((id) => this.online(id), this.relayMap);
    for (const id of ids) {
      const n = snap.node(id);
      if (n) out.set(id, snap.mapFor(n));
    }
    // the snapshot recorded any change not yet pushed: the streams get it with the next broadcast
    this.changed();
    return out;
  }

  private writeAll(line: MapLine): void {
    const text = JSON.stringify(line) + '\n';
    for (const s of this.streams.values()) {
      // a stream's first line is its map (written with the next broadcast)
      if (s.closed || (s.sent === null && s.held === null)) continue;
      const socket = s.res.socket;
      if (!s.firstMapTaken && socket && !s.out.busy && firstMapTaken(socket, s.res.writableLength)) {
        s.firstMapTaken = true;
        setStreamUserTimeout(socket, this.limits.streamUserTimeoutMs);
      }
      // a blocked stream has data on its way: a keepalive would only add to it; it is checked against the limit instead
      if (s.blocked) this.dropIfOverLimit(s);
      else if (!s.out.write(text, text.length)) s.blocked = true;
    }
  }

  /**
   * Checked while a stream is blocked, when the next map or keepalive comes due
   * (right after a write, unsent bytes include what the kernel is about to take).
   */
  private dropIfOverLimit(s: Stream): boolean {
    const unsent = s.out.unsentBytes;
    if (unsent <= this.limits.mapStreamMaxUnsentBytes) return false;
    this.streamCounters.dropped++;
    this.log(`map stream of node ${s.nodeId} dropped: ${unsent} bytes unsent (limit ${this.limits.mapStreamMaxUnsentBytes}); it reconnects for a fresh map`);
    s.closed = true;
    s.res.destroy();
    return true;
  }
}

const POST_ROUTES = new Map<string, 'register' | 'map' | 'endpoints' | 'advertise' | 'logout'>([
  [PATHS.register, 'register'],
  [PATHS.map, 'map'],
  [PATHS.endpoints, 'endpoints'],
  [PATHS.advertise, 'advertise'],
  [PATHS.logout, 'logout'],
]);

const hostPort = (a: string, port: number): string => (a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
const GET_ROUTES = new Map<string, ControlRoute>([
  [PATHS.key, 'key'],
  ['/healthz', 'healthz'],
  [PATHS.verify, 'verify'],
]);

/** The route label of a request: one of a fixed set, whatever path it asked for. */
function routeOf(method: string | undefined, url: string | undefined): ControlRoute {
  const u = url ?? '';
  const q = u.indexOf('?');
  const path = q < 0 ? u : u.slice(0, q);
  return (method === 'GET' ? GET_ROUTES.get(path) : method === 'POST' ? POST_ROUTES.get(u) : undefined) ?? 'other';
}

/** Request text echoed in errors and logs: short and printable. */
function clip(s: string): string {
  return terminalSafe(s, 80);
}

/** The listener could not be opened (port in use, permission); `cause` carries the errno. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(
    readonly address: string,
    readonly errno: NodeJS.ErrnoException,
  ) {
    super(`cannot listen on ${address}: ${errno.message}`);
  }
}
