// The node agent (Tailscale's ipnlocal): one state machine that joins the
// network through the control server, keeps the data plane in step with the
// network map, and answers the local API. It keeps carrying traffic on the
// last map it had when the control server is unreachable, and reconnects
// with backoff.
import { hostname as osHostname } from 'node:os';
import { keyFromText, keyToText } from '../crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../crypto/x25519.js';
import { endpointKey } from '../engine/conn/endpoint.js';
import { parseIp } from '../util/netaddr.js';
import { MAX_NODE_ENDPOINTS, type NetworkMap, type NodeView, type RegisterResult } from '../netmap/types.js';
import {
  ApiError,
  type BackendState,
  type DnsQueryResponse,
  type DeviceStatus,
  type DnsStatus,
  type NetcheckResponse,
  type PeerStatus,
  type PingResponse,
  type PrefsRequest,
  type Status,
  type UpRequest,
  type WhoisResponse,
} from '../localapi/types.js';
import { ControlClient, type MapStream } from './control-client.js';
import { parseRegisterResult } from '../netmap/parse.js';
import { DEFAULT_MESH_MTU, EngineHost } from './engine-host.js';
import { endpointsToReport, localEndpoints } from './local-endpoints.js';
import { chooseHome, type StunTarget } from '../nat/netcheck.js';
import type { NetReport } from '../netmap/netreport.js';
import { StateStore, type NodeState, type Prefs } from './state.js';
import type { DaemonKnobs } from './test-knobs.js';
import { byCodeUnits, isoTime } from '../util/time.js';
import { memoryCounters } from './memory.js';
import { IdleMemory } from '../util/idle-memory.js';
import { NetChange, RELAY_PROBE_TIMEOUT_MS } from './net-change.js';
import { rateLimitedLog } from '../util/rate-limited-log.js';
import { DnsHost } from './dns-host.js';
import { deviceForwarding, forwardingHealth, gatewayDevices, plainPeersOf } from './device-gateway.js';
import { SubnetRoutes } from './subnet-routes.js';
import { Advertiser, advertisementOf } from './advertise.js';
import { destinationFilter, type DestinationFilterStats } from '../engine/device/destination-filter.js';
import { destinationPolicy } from './subnet-routes.js';
import { AccessFilter } from './access-filter.js';
import type { DaemonMetricsView } from './metrics.js';
import { activeExitPeer, exitNodeHealth, exitNodeRefusal, exitNodeState, servesAsExitNode, withExitNode } from './exit-node.js';
import { PathReporter } from './path-report.js';
import { statusPieces } from './status-pieces.js';
import { enginePeerStep, LiveMap, type MapChange, wholeChange } from './live-map.js';
import type { NetmapState } from '../netmap/delta.js';
import type { MapDelta } from '../netmap/types.js';

/** How long a node waits for its first map after registering before `up` gives up. */
const DEFAULT_UP_TIMEOUT_MS = 30_000;
/** Reconnect backoff to the control server: doubles from 1 s to 30 s, ±25 % jitter so nodes do not stampede. */
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/**
 * The map stream carries a keepalive line every 3 s (MAP_KEEPALIVE_MS); four missed ones mean it is dead. Control
 * marks a node whose stream died offline within ~10 s (TCP_USER_TIMEOUT) and its peers drop it: a node that waited
 * longer to notice would stay unreachable for the difference.
 */
const MAP_IDLE_TIMEOUT_MS = 12_000;
/**
 * How often local addresses are re-read to notice a changed endpoint: a node that moves to another network (roaming,
 * a DHCP renew) starts its recovery within this, and the promise is a path again within 5 s. Reading the interfaces
 * costs tens of microseconds; a report goes to control only when something changed.
 */
const ENDPOINT_POLL_MS = 1000;
const LOGOUT_TIMEOUT_MS = 5000;
/**
 * netmap.json is written at most once per 2 s: a restart (even after SIGKILL) resumes from a map at most this old,
 * and a burst of deltas to a map of thousands of peers costs one write of it, not one per delta.
 */
const MAP_SAVE_MIN_INTERVAL_MS = 2000;
/**
 * And at least this many times as long as the last write took: at thousands of peers a write (serialising megabytes,
 * fsync) takes tens of ms, and writes a change apart would cost more CPU than the changes; this keeps them under 1 %.
 */
const MAP_SAVE_COST_FACTOR = 100;
/** Netcheck cadence: mappings and relay latency drift; Tailscale re-checks every ~20-26 s. */
const NETCHECK_INTERVAL_MS = 30_000;
/** A status text piece: far below V8's large-object threshold (a string of 128 KiB or more is made there), so it dies young. */
const STATUS_PIECE_CHARS = 32 * 1024;

export interface BackendOptions {
  stateDir: string;
  defaults: { ifname: string; port: number };
  version: string;
  logger: (msg: string) => void;
  knobs?: DaemonKnobs;
}

export class Backend {
  private st: NodeState;
  private readonly store: StateStore;
  /** netmap.json: when it was last written, the newest map waiting for the next write, and that write's timer */
  private mapSavedAtMs = -Infinity;
  private mapToSave: NetworkMap | null = null;
  private mapSaveTimer: NodeJS.Timeout | null = null;
  private state: BackendState = 'NoState';
  private host: EngineHost | null = null;
  private control: ControlClient | null = null;
  /** the network map, kept in step with the stream at the cost of each change (live-map.ts) */
  private readonly live = new LiveMap();
  /** the exit node's view the engine got with the default routes added, to notice when that changes */
  private engineExit: NodeView | undefined;
  /** how long the last netmap.json write took: the next one waits MAP_SAVE_COST_FACTOR times that at least */
  private mapSaveCostMs = 0;
  /** status's text of each idle peer without routes, kept with its map view (statusJson) */
  private readonly peerTexts = new WeakMap<NodeView, CachedPeerText>();
  /** the peers in status's order (by name) and the map version they were sorted for */
  private sortedPeers: NodeView[] = [];
  private sortedFor = -1;
  private stream: MapStream | null = null;
  private loopGeneration = 0;
  private connected = false;
  private lastError: string | null = null;
  private mapWaiters: (() => void)[] = [];
  private endpointTimer: NodeJS.Timeout | null = null;
  private netcheckTimer: NodeJS.Timeout | null = null;
  /** the relay region where peers can always reach this node */
  private home: string | null = null;
  private relayMapKey = '';
  /** the engine the last whole map was applied to: a delta is applied alone only to that one */
  private wholeMapHost: EngineHost | null = null;
  /** whether the inbound destination check was last built for an approved exit node */
  private servedExit = false;
  private reportedEndpoints = '';
  private readonly pathReport = new PathReporter();
  /** the local endpoints last seen, to notice a move to another network */
  private localKey = '';
  /** a lost direct path or new local addresses: relays probed, endpoints re-learnt, a new map stream (net-change.ts) */
  private readonly netChange = new NetChange({
    probeRelays: () => this.host?.relays.probeAll(RELAY_PROBE_TIMEOUT_MS),
    netcheck: () => void this.netcheck().catch((err: Error) => this.log(`netcheck: ${err.message}`)),
    renewMapStream: () => this.renewMapStream(),
    log: (m) => this.log(m),
  });
  private readonly log: (msg: string) => void;
  /** `up` waits for a resume in progress, so the two never build the engine twice */
  private resuming: Promise<void> = Promise.resolve();

  /** hands memory back once the tunnel has been quiet a while (util/idle-memory.ts) */
  private readonly idleMemory: IdleMemory;
  /** the mesh's name service on this node: resolver, its addresses, the OS resolver (dns-host.ts) */
  private readonly dns: DnsHost;
  /** subnet routes: table 52 and its rules, SNAT, the destination check's counters (subnet-routes.ts) */
  private readonly subnets: SubnetRoutes;
  private readonly destinationStats: DestinationFilterStats = { droppedDestination: 0 };
  private readonly accessFilter = new AccessFilter((m) => this.log(m));
  /** what this node advertises, kept in step with control (advertise.ts) */
  private readonly advertiser: Advertiser;

  constructor(private readonly opts: BackendOptions) {
    // data the tunnel carried, both ways: not every TUN read (the OS sends a little, e.g. IPv6 MLD,
    // that is dropped for want of a route) nor keepalives (one goes out 10 s after the last data)
    const activity = (): number => this.host?.activity() ?? 0;
    const readerThreads = (): number => this.host?.readerThreads() ?? 0;
    this.idleMemory = new IdleMemory(activity, { quietMs: opts.knobs?.idleReleaseMs, threads: readerThreads });
    this.idleMemory.start();
    this.log = opts.logger;
    this.store = new StateStore(opts.stateDir);
    this.st = this.store.load(opts.defaults);
    this.state = this.st.node ? 'Stopped' : 'NeedsLogin';
    this.dns = new DnsHost({ stateDir: opts.stateDir, logger: this.log });
    this.subnets = new SubnetRoutes({ logger: this.log });
    this.advertiser = new Advertiser(this.log);
  }

  /** Comes back up on its own after a restart if the node was up: same keys, same addresses, last known peers. */
  resume(): Promise<void> {
    this.resuming = this.doResume();
    return this.resuming;
  }

  private async doResume(): Promise<void> {
    // first of all: a previous run that crashed may have left the OS resolver pointing at a resolver that is gone,
    // and the control server's host name is about to be looked up
    await this.dns.recover();
    // and routes, rules and SNAT a killed daemon left: they would steer traffic into an interface that is gone
    await this.subnets.recover();
    if (!this.st.prefs.wantRunning || !this.st.node || !this.st.prefs.loginServer) return;
    try {
      await this.startEngine();
      const cached = this.store.loadMap(this.log);
      if (cached) await this.applyMap(this.live.setWhole(cached));
      this.state = 'Starting';
      this.control = new ControlClient(controlUrls(this.st.prefs), this.st.prefs.controlCaPem, this.nodePrivate(), this.st.prefs.controlPin, { log: this.log });
      this.startMapLoop();
      this.log(`resumed as ${this.st.node.name} (${this.st.node.addresses.join(', ')})`);
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log(`could not resume: ${this.lastError}`);
    }
  }

  /** The network map in effect (null before the first one and after down). */
  private get map(): NetworkMap | null {
    return this.live.map;
  }

  private nodePrivate(): Buffer {
    return Buffer.from(this.st.nodePrivateKey, 'base64');
  }

  /**
   * Changes the state and writes it: the change is made on a copy, written
   * atomically, and only then becomes the daemon's state, so a failed write
   * (disk full) throws and leaves the in-memory state equal to what is on disk.
   */
  private update(change: (s: NodeState) => void): void {
    const next = structuredClone(this.st);
    change(next);
    try {
      this.store.save(next);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ApiError('FAILURE', `cannot save ${this.store.file} (${e.code ?? e.message}): the change was not made; free space on that disk and try again`);
    }
    this.st = next;
  }

  operator(): string | null {
    return this.st.prefs.operator;
  }

  /** The control server this node trusts now: the local API lets only root change it. */
  controlTrust(): { loginServer: string | null; loginServers?: string[]; controlCaPem: string | null; controlPin?: string | null } {
    const p = this.st.prefs;
    return { loginServer: p.loginServer, loginServers: controlUrls(p), controlCaPem: p.controlCaPem, controlPin: p.controlPin };
  }

  // ---- up / down / logout --------------------------------------------------------

  async up(req: UpRequest, progress: (msg: string) => void): Promise<Status> {
    await this.resuming;
    const p = this.st.prefs;
    const loginServers = upServers(req, p);
    const loginServer = loginServers[0];
    if (!loginServer) throw new ApiError('BAD_REQUEST', 'no login server: pass --login-server https://HOST:PORT');
    // another replica of the same network is not another server: only a first URL the node did not know is
    const serverChanged = !controlUrls(p).includes(loginServer);
    // a pin and a CA are two ways to trust the server: the one given now replaces the other
    const newTrust = req.controlCaPem !== undefined || req.controlPin !== undefined;
    const caPem = req.controlCaPem ?? (serverChanged || newTrust ? null : p.controlCaPem);
    const pin = req.controlPin ?? (serverChanged || newTrust ? null : p.controlPin);
    const hostname = req.hostname ?? p.hostname ?? osHostname();
    const ifname = req.ifname ?? p.ifname;
    const port = req.port ?? p.port;
    const timeoutMs = req.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS;
    const deadline = performance.now() + timeoutMs; // monotonic, as every deadline: a clock step must not cut `up` short
    if (serverChanged && this.st.node)
      throw new ApiError('BAD_REQUEST', `this node belongs to ${p.loginServer}: run \`meshctl logout\` before joining ${loginServer}`);
    this.checkExitNode(req.exitNode);

    const control = new ControlClient(loginServers, caPem, this.nodePrivate(), pin, { log: this.log });
    const engineChanged = this.host && (this.host.ifname !== ifname || (port !== 0 && this.host.port !== port));
    if (engineChanged) await this.stopEngine();
    const wasRunning = this.host !== null;
    if (!this.host) {
      progress(`creating interface ${ifname}`);
      this.update((s) => Object.assign(s.prefs, { ifname, port }));
      await this.startEngine();
    }
    let reg: RegisterResult;
    try {
      progress(`registering with ${loginServer}`);
      const answer = await control.call<unknown>(
        'register',
        {
          authKey: req.authKey,
          hostname,
          os: process.platform,
          version: this.opts.version,
          discoKey: this.discoPublic(),
          endpoints: this.endpoints(),
          ...this.advertiser.registerField(this.st.prefs, req),
        },
        Math.max(1, deadline - performance.now()),
      );
      try {
        reg = parseRegisterResult(answer);
      } catch (err) {
        const msg = `register result from control refused: ${(err as Error).message}`;
        this.log(msg);
        throw new ApiError('FAILURE', msg);
      }
    } catch (err) {
      if (!wasRunning) await this.stopEngine();
      this.lastError = (err as Error).message;
      throw err;
    }
    try {
      this.update((s) => {
        s.node = reg.node;
        s.ipv4Prefix = reg.ipv4Prefix;
        s.ipv6Prefix = reg.ipv6Prefix;
        Object.assign(s.prefs, {
          loginServer,
          loginServers,
          controlCaPem: caPem,
          controlPin: pin,
          hostname: req.hostname ?? p.hostname,
          wantRunning: true,
          acceptDns: req.acceptDns ?? p.acceptDns,
          advertiseRoutes: req.advertiseRoutes ?? p.advertiseRoutes,
          acceptRoutes: req.acceptRoutes ?? p.acceptRoutes,
          snatSubnetRoutes: req.snatSubnetRoutes ?? p.snatSubnetRoutes,
          advertiseExitNode: req.advertiseExitNode ?? p.advertiseExitNode,
          exitNodeAllowLanAccess: req.exitNodeAllowLanAccess ?? p.exitNodeAllowLanAccess,
        });
      });
    } catch (err) {
      if (!wasRunning) await this.stopEngine();
      throw err;
    }
    this.control = control;
    this.lastError = null;
    progress(`registered as ${reg.node.name} (${reg.node.addresses.join(', ')})`);
    await this.host!.configureAddresses(reg.node, [reg.ipv4Prefix, reg.ipv6Prefix]);
    if (this.state !== 'Running') this.state = 'Starting';
    this.stream?.close();
    this.startMapLoop();
    // a node already running takes a changed accept-dns now, not at the next map
    if (this.map) await this.updateDns();
    progress('waiting for the network map');
    await this.waitForMap(Math.max(1, deadline - performance.now()));
    if (req.exitNode !== undefined) await this.chooseExitNode(req.exitNode);
    // the settings may have changed without a new map: routes and SNAT follow them now
    if (this.map) await this.updateSubnets();
    for (const h of this.subnets.health()) progress(`warning: ${h}`);
    return this.status();
  }

  private waitForMap(timeoutMs: number): Promise<void> {
    if (this.state === 'Running') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new ApiError('TIMEOUT', `no network map within ${timeoutMs} ms: ${this.lastError ?? 'the control server did not answer'}`)),
        timeoutMs,
      );
      this.mapWaiters.push(() => (clearTimeout(t), resolve()));
    });
  }

  async down(): Promise<void> {
    let unsaved: Error | null = null;
    try {
      this.update((s) => (s.prefs.wantRunning = false));
    } catch (err) {
      unsaved = err as Error;
    }
    // the tunnel goes down even when the disk is full; the answer then says a restart brings it back
    this.stopMapLoop();
    await this.stopEngine();
    this.live.clear();
    this.state = this.st.node ? 'Stopped' : 'NeedsLogin';
    if (unsaved) throw new ApiError('FAILURE', `stopped, but ${unsaved.message}: until then a daemon restart would bring the node up again`);
  }

  async logout(): Promise<void> {
    if (this.st.node && this.st.prefs.loginServer) {
      const c =
        this.control ??
        new ControlClient(controlUrls(this.st.prefs), this.st.prefs.controlCaPem, this.nodePrivate(), this.st.prefs.controlPin, { log: this.log });
      await c
        .call('logout', {}, LOGOUT_TIMEOUT_MS)
        .catch((err: Error) => this.log(`logout at control failed (${err.message}); forgetting the key here anyway`));
    }
    await this.down();
    this.update((s) => {
      s.nodePrivateKey = generatePrivateKey().toString('base64');
      s.discoPrivateKey = generatePrivateKey().toString('base64');
      s.node = null;
    });
    this.cancelMapSave();
    this.store.saveMap(null);
    this.state = 'NeedsLogin';
  }

  /** Refuses an exit node that is not an approved exit node in the current map (nothing is changed). */
  private checkExitNode(sel: string | undefined): void {
    if (!sel || !this.map) return;
    const why = exitNodeRefusal(this.map, sel);
    if (why) throw new ApiError('BAD_REQUEST', why);
  }

  /** Sets the exit node ('' turns it off) once the map is known; a refused one changes nothing. */
  private async chooseExitNode(sel: string): Promise<void> {
    this.checkExitNode(sel);
    if (sel === this.st.prefs.exitNode) return;
    this.update((s) => (s.prefs.exitNode = sel));
    if (this.map && this.host) {
      this.applyAllPeers(this.map);
      await this.updateSubnets();
    }
  }

  async setPrefs(r: PrefsRequest): Promise<void> {
    const dnsChanged = r.acceptDns !== undefined && r.acceptDns !== this.st.prefs.acceptDns;
    this.checkExitNode(r.exitNode);
    const routesChanged = (['advertiseRoutes', 'acceptRoutes', 'snatSubnetRoutes', 'advertiseExitNode', 'exitNode', 'exitNodeAllowLanAccess'] as const).some(
      (k) => r[k] !== undefined && JSON.stringify(r[k]) !== JSON.stringify(this.st.prefs[k]),
    );
    if ((r.advertiseRoutes !== undefined || r.advertiseExitNode !== undefined) && this.control && this.connected && routesChanged) {
      // control checks the routes against the network first: a refused list is not saved
      try {
        await this.advertiser.send(
          this.control,
          advertisementOf({
            advertiseRoutes: r.advertiseRoutes ?? this.st.prefs.advertiseRoutes,
            advertiseExitNode: r.advertiseExitNode ?? this.st.prefs.advertiseExitNode,
          }),
        );
      } catch (err) {
        if ((err as { controlCode?: string }).controlCode) throw new ApiError('BAD_REQUEST', `control refused the routes: ${(err as Error).message}`);
        this.log(`advertising routes: ${(err as Error).message}; retried at the next map`);
      }
    }
    this.update((s) => {
      if (r.operator !== undefined) s.prefs.operator = r.operator;
      if (r.hostname !== undefined) s.prefs.hostname = r.hostname;
      if (r.acceptDns !== undefined) s.prefs.acceptDns = r.acceptDns;
      if (r.advertiseRoutes !== undefined) s.prefs.advertiseRoutes = r.advertiseRoutes;
      if (r.acceptRoutes !== undefined) s.prefs.acceptRoutes = r.acceptRoutes;
      if (r.snatSubnetRoutes !== undefined) s.prefs.snatSubnetRoutes = r.snatSubnetRoutes;
      if (r.advertiseExitNode !== undefined) s.prefs.advertiseExitNode = r.advertiseExitNode;
      if (r.exitNode !== undefined) s.prefs.exitNode = r.exitNode;
      if (r.exitNodeAllowLanAccess !== undefined) s.prefs.exitNodeAllowLanAccess = r.exitNodeAllowLanAccess;
    });
    if (r.exitNode !== undefined && this.map && this.host) this.applyAllPeers(this.map);
    if (dnsChanged && this.map) await this.updateDns();
    if (routesChanged && this.map) {
      await this.syncAdvertised();
      await this.updateSubnets();
    }
  }

  /** Table 52, its rules and SNAT as the current map and settings want them; failures are health lines. */
  private updateSubnets(): Promise<void> {
    if (!this.host || !this.map) return Promise.resolve();
    return this.subnets.update(this.map, this.host.ifname, this.st.prefs).catch((err: Error) => this.log(`subnet routes: ${err.message}`));
  }

  /** Tells control what this node advertises when the map shows something else. */
  private syncAdvertised(): Promise<void> {
    if (!this.control || !this.map) return Promise.resolve();
    return this.advertiser.sync(this.control, this.map.self, this.st.prefs);
  }

  /** DNS as the current map and settings want it; a failure is a health line, never an error of the caller's. */
  private updateDns(names = true): Promise<void> {
    if (!this.host || !this.map) return Promise.resolve();
    return this.dns.update(this.map, this.host.ifname, this.st.prefs.acceptDns, names);
  }

  dnsStatus(): DnsStatus {
    return this.dns.status(this.st.prefs.acceptDns);
  }

  async dnsQuery(name: string, type: string): Promise<DnsQueryResponse> {
    if (!this.host || !this.map) throw new ApiError('NOT_RUNNING', 'meshctl is not up: run `meshctl up`');
    if (!this.map.dns) throw new ApiError('NOT_FOUND', 'the control server sends no DNS config: this node runs no resolver');
    try {
      return await this.dns.query(name, type);
    } catch (err) {
      throw new ApiError('UNREACHABLE', `asking the resolver: ${(err as Error).message}`);
    }
  }

  // ---- engine and map ------------------------------------------------------------

  private discoPublic(): string {
    return keyToText(publicKeyOf(Buffer.from(this.st.discoPrivateKey, 'base64')));
  }

  /** What this node reports to control (endpointsToReport says in which order and how many). */
  private endpoints(): string[] {
    if (!this.host) return [];
    return endpointsToReport(this.host.localEndpointTexts(), this.host.extraEndpoints, MAX_NODE_ENDPOINTS);
  }

  private stunTargets(): StunTarget[] {
    return (this.map?.relays ?? []).map((r) => ({
      region: r.code,
      host: new URL(r.url).hostname.replace(/^\[|\]$/g, ''),
      port: r.stunPort,
      url: r.url,
      ...(r.ipv6 ? { host6: r.ipv6 } : {}),
    }));
  }

  /** Runs netcheck, picks the home region (with hysteresis) and reports new endpoints or home to control. */
  async netcheck(): Promise<NetReport | null> {
    const host = this.host;
    if (!host) return null;
    const targets = this.stunTargets();
    // a port-mapped endpoint first: it is reachable from any kind of NAT
    const learned = (mapped: NetReport['mapped']): void => {
      host.extraEndpoints = [...new Set([...(host.portMapped ? [host.portMapped] : []), ...mapped.map((m) => m.mapped)])];
    };
    const report = await host.runNetcheck(targets, (mapped) => {
      if (this.host !== host) return;
      // the STUN-mapped address goes to control now, not after the port-mapping probes
      learned(mapped);
      this.pollEndpoints();
    });
    if (this.host !== host) return report;
    learned(report.mapped);
    const home = chooseHome(this.home, report.regionLatencyMs) ?? this.home ?? targets[0]?.region ?? null;
    if (home !== this.home) this.log(`home relay region: ${home ?? 'none'}`);
    this.home = home;
    this.updateRelays();
    await this.checkEndpoints();
    return report;
  }

  /** Relay regions we need: our home (peers reach us there) and every peer's home (we reach them there). */
  private updateRelays(): void {
    if (!this.host || !this.map) return;
    const wanted = new Set<string>();
    if (this.home) wanted.add(this.home);
    for (const p of this.map.peers) if (p.online && p.homeRelay) wanted.add(p.homeRelay);
    this.host.relays.update(this.map.relays, wanted);
  }

  private async startEngine(): Promise<void> {
    const k = this.opts.knobs;
    this.host = await EngineHost.start({
      ifname: this.st.prefs.ifname,
      port: this.st.prefs.port,
      mtu: DEFAULT_MESH_MTU,
      nodePrivateKey: this.nodePrivate(),
      discoPrivateKey: Buffer.from(this.st.discoPrivateKey, 'base64'),
      engineTimers: k?.engineTimers,
      pathTimers: k?.pathTimers,
      logger: this.log,
      localEndpoints: (port) => localEndpoints(port, this.st.prefs.ifname, this.st.ipv6Prefix),
      extraAllowedIps: k?.extraAllowedIps,
      timestampFloor: this.store.timestampFloor(),
      wallNow: () => this.control?.serverClock.now() ?? Date.now(),
      onDirectLost: () => this.netChange.suspect('a direct path stopped answering'),
    });
    if (this.st.node && this.st.ipv4Prefix && this.st.ipv6Prefix) await this.host.configureAddresses(this.st.node, [this.st.ipv4Prefix, this.st.ipv6Prefix]);
    this.reportedEndpoints = this.endpoints().join();
    this.localKey = this.host.localEndpointTexts().join();
    this.endpointTimer = setInterval(() => this.pollEndpoints(), ENDPOINT_POLL_MS);
    this.endpointTimer.unref();
    this.netcheckTimer = setInterval(() => void this.netcheck().catch((err: Error) => this.log(`netcheck: ${err.message}`)), NETCHECK_INTERVAL_MS);
    this.netcheckTimer.unref();
  }

  private async stopEngine(): Promise<void> {
    if (this.endpointTimer) clearInterval(this.endpointTimer);
    if (this.netcheckTimer) clearInterval(this.netcheckTimer);
    this.endpointTimer = null;
    this.netcheckTimer = null;
    const h = this.host;
    // no host from here on: a map still being applied cannot configure DNS again after the stop below
    this.host = null;
    // the OS resolver back as it was and the resolver's addresses off, while the interface still exists
    await this.dns.stop();
    await this.subnets.stop();
    await h?.stop();
  }

  /**
   * checkEndpoints from a timer or callback: a failure (reading the interfaces
   * throws when the process is out of file descriptors) is logged, at most one
   * line a minute, and the next poll tries again.
   */
  private pollEndpoints(): void {
    this.checkEndpoints().catch((err: Error) => this.endpointErrorLog(`reading the local endpoints failed: ${err.message}`));
  }
  private readonly endpointErrorLog = rateLimitedLog((m) => this.log(m), 60_000);

  private async checkEndpoints(): Promise<void> {
    if (!this.host) return;
    const local = this.host.localEndpointTexts().join();
    if (local !== this.localKey) {
      const first = this.localKey === '';
      this.localKey = local;
      if (!first) this.netChange.suspect('the local addresses changed');
    }
    if (!this.control || !this.connected) return;
    const eps = this.endpoints();
    const key = `${eps.join()}|${this.home ?? ''}`;
    // an interval, so monotonic: a wall clock stepped back would hold the path counts back for as long as the step
    const now = performance.now();
    // the path counts ride along when they changed (at most once per PATH_REPORT_MIN_INTERVAL_MS)
    const paths = this.pathReport.due(this.host.pathCounts(), now);
    if (key === this.reportedEndpoints && !paths) return;
    this.reportedEndpoints = key;
    if (paths) this.pathReport.sending(paths, now);
    await this.control.call('endpoints', { endpoints: eps, homeRelay: this.home, ...(paths ? { paths } : {}) }, 10_000).catch((err: Error) => {
      // a refused or lost update (control busy, rate-limited, restarting) is sent again at the next poll
      if (this.reportedEndpoints === key) this.reportedEndpoints = '';
      if (paths) this.pathReport.forget();
      this.endpointErrorLog(`endpoint update failed: ${err.message}`);
    });
  }

  /**
   * Brings everything derived from the map in step with a change of it (live-map.ts): a whole map rebuilds all of it;
   * a delta redoes only what it touched (the engine's entries of the peers it names; the filters, DNS zone and subnet
   * routes only when their inputs changed), so a change costs its own size, not the network's. The engine and the
   * filters are set before the first await: each change is in force, in order, before the next one is applied.
   */
  private async applyMap(change: MapChange): Promise<void> {
    const t0 = performance.now();
    const map = this.map;
    if (!this.host || !map) return;
    // an engine started since the last whole map (a new interface or port) holds none of it: it gets all of it now
    if (this.host !== this.wholeMapHost) change = wholeChange();
    if (change.whole) this.wholeMapHost = this.host;
    if (change.self && JSON.stringify(map.self) !== JSON.stringify(this.st.node)) {
      try {
        this.update((s) => (s.node = map.self));
      } catch (err) {
        this.log(`${(err as Error).message} (this node's own entry from the map)`);
      }
    }
    let relaysChanged = false;
    if (change.relays) {
      relaysChanged = JSON.stringify(map.relays) !== this.relayMapKey;
      this.relayMapKey = JSON.stringify(map.relays);
    }
    if (!this.home && map.relays[0]) this.home = map.relays[0].code;
    this.updateRelays();
    const gateway = gatewayDevices(map).length > 0;
    const peersChanged = change.before.length + change.after.length > 0;
    // the destination check in the same step as the peers' AllowedIPs: a route that left the map carries nothing more
    // a gateway also forwards its devices' packets into the mesh (device-gateway.ts); an approved exit node takes any destination
    const exit = servesAsExitNode(map.self, this.st.prefs);
    if (change.whole || change.self || change.dns || change.devices || exit !== this.servedExit || (gateway && peersChanged)) {
      this.host.setInboundFilter(
        destinationFilter({ ...destinationPolicy(map), devices: deviceForwarding(map), anyV4: exit, anyV6: exit }, this.destinationStats),
      );
      this.servedExit = exit;
    }
    // the access policy's rules, in the same step: a permission the map no longer holds cuts its flows now
    if (change.whole || change.packetFilter || change.devices || change.self)
      this.accessFilter.apply(this.host, map.packetFilter, deviceForwarding(map).sources);
    // the chosen exit node's AllowedIPs gain the default routes while it is approved and online
    const peers = change.whole ? this.applyAllPeers(map) : this.applyPeerChange(map, change);
    if (peers.added || peers.removed) {
      // one line per change of the peer set: what an operator (and bench/control-daemon.ts) reads to see a change arrive
      this.log(`peers: ${peers.added} added, ${peers.removed} removed, ${peers.total} in all (map applied in ${(performance.now() - t0).toFixed(1)} ms)`);
    }
    if (change.whole || change.devices || change.self || gateway) this.host.setPlainPeers(plainPeersOf(gatewayDevices(map), (m) => this.log(m)));
    await this.host.configureAddresses(map.self, [map.ipv4Prefix, map.ipv6Prefix]).catch((err: Error) => this.log(err.message));
    // routes: only a change of this node or of a peer that has or had routes can change them
    const routed = (v: NodeView): boolean => (v.routes?.length ?? 0) > 0 || (v.primaryRoutes?.length ?? 0) > 0;
    if (change.whole || change.self || change.before.some(routed) || change.after.some(routed)) await this.updateSubnets();
    if (change.whole || change.self) void this.syncAdvertised();
    await this.updateDns(change.names);
    if (relaysChanged && map.relays.length) void this.netcheck().catch((err: Error) => this.log(`netcheck: ${err.message}`));
  }

  /** The engine's peer table from the whole map (the first map, a resync, a new exit node setting). */
  private applyAllPeers(map: NetworkMap) {
    this.engineExit = activeExitPeer(map, this.st.prefs);
    return this.host!.applyMap(withExitNode(map, this.st.prefs));
  }

  /** The engine's entries of the peers a delta named (and of the exit node, when which peer that is changed). */
  private applyPeerChange(map: NetworkMap, change: MapChange) {
    const step = enginePeerStep(this.live, map, change, this.st.prefs, this.engineExit);
    this.engineExit = step.exitPeer;
    return this.host!.applyPeers(step.nodeKeys, step.viewOf);
  }

  private stopMapLoop(): void {
    this.loopGeneration++;
    this.stream?.close();
    this.stream = null;
    this.connected = false;
  }

  private startMapLoop(): void {
    const gen = ++this.loopGeneration;
    void (async () => {
      let backoff = BACKOFF_MIN_MS;
      while (gen === this.loopGeneration && this.control) {
        try {
          const body = { endpoints: this.endpoints(), discoKey: this.discoPublic() };
          this.reportedEndpoints = body.endpoints.join();
          // the stream's copy of the map, after each whole map or delta: the daemon's map follows it at the delta's cost
          const onState = (state: NetmapState, _bytes: number, delta?: MapDelta): void => {
            if (gen !== this.loopGeneration) return;
            const change = delta ? this.live.applyDelta(state, delta) : this.live.setWhole(state.toMap());
            void this.onMap(change, gen).catch((err: Error) => this.log(`applying the network map failed: ${err.message}`));
          };
          const stream = await this.control.openMap(body, () => {}, MAP_IDLE_TIMEOUT_MS, { onRefused: (msg) => this.log(msg), onState });
          if (gen !== this.loopGeneration) return stream.close();
          // a renewed stream replaces the old one only now that control has taken the new one: the node is never offline
          const previous = this.stream;
          this.stream = stream;
          if (previous && previous !== stream) previous.close();
          this.connected = true;
          // control forgets a node's path counts while it is offline: report them again on this stream
          this.pathReport.forget();
          this.lastError = null;
          backoff = BACKOFF_MIN_MS;
          const end = await stream.done;
          // a loop that renewMapStream replaced ends here, leaving the state to the new one
          if (gen !== this.loopGeneration) return;
          this.connected = false;
          if (end.gone) return void (await this.lostRegistration(end.gone));
          if (end.error) this.lastError = end.error.message;
        } catch (err) {
          this.connected = false;
          this.lastError = (err as Error).message;
          const cc = (err as { controlCode?: string }).controlCode;
          if (cc === 'NODE_UNKNOWN' || cc === 'NODE_EXPIRED') return void (await this.lostRegistration(cc));
        }
        if (gen !== this.loopGeneration) return;
        const wait = backoff * (0.75 + Math.random() * 0.5);
        backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
        await new Promise((r) => setTimeout(r, wait));
      }
    })();
  }

  /**
   * A new map stream alongside the old one, which is closed once control took the new one (control keeps the newest
   * per node). For when the old one may be dead without knowing it: its TCP connection left from an address this node
   * no longer has, and control's keepalives on it go nowhere.
   */
  private renewMapStream(): void {
    if (!this.control || !this.stream) return;
    // the new stream and the endpoint update that follows go out on new connections, from the addresses we have now
    this.control.dropKeptConnections();
    this.startMapLoop();
  }

  /**
   * One map or delta of the stream that loop `gen` opened. A line of an older loop (one that `down` or a new `up` ended
   * while the line was on its way or being applied) is ignored: it must neither bring back a map after `down` nor end
   * the wait of the next `up` before that `up`'s own map is in effect.
   */
  private async onMap(change: MapChange, gen: number): Promise<void> {
    if (gen !== this.loopGeneration) return;
    await this.applyMap(change);
    if (gen !== this.loopGeneration || !this.map) return;
    this.saveMapSoon(this.map);
    if (this.state === 'Starting') this.state = 'Running';
    for (const w of this.mapWaiters.splice(0)) w();
  }

  /**
   * Writes netmap.json now, or when MAP_SAVE_MIN_INTERVAL_MS has passed since the last write (only the newest map
   * waiting is written then): at thousands of peers a map is megabytes and a delta comes with every change.
   */
  private saveMapSoon(map: NetworkMap): void {
    const wait = this.mapSavedAtMs + Math.max(MAP_SAVE_MIN_INTERVAL_MS, MAP_SAVE_COST_FACTOR * this.mapSaveCostMs) - Date.now();
    if (wait <= 0) return this.writeMap(map);
    this.mapToSave = map;
    if (this.mapSaveTimer) return;
    this.mapSaveTimer = setTimeout(() => {
      this.mapSaveTimer = null;
      const m = this.mapToSave;
      this.mapToSave = null;
      if (m) this.writeMap(m);
    }, wait);
    this.mapSaveTimer.unref();
  }

  private writeMap(map: NetworkMap): void {
    const t0 = performance.now();
    this.mapSavedAtMs = Date.now();
    try {
      this.store.saveMap(map);
      this.mapSaveCostMs = performance.now() - t0;
    } catch (err) {
      // the map is in effect; only the copy a restart would begin with is older
      this.log(`cannot save ${this.store.mapFile} (${(err as Error).message}): a restart resumes from the previous map`);
    }
  }

  /** netmap.json is about to be removed: a map waiting to be written must not bring it back. */
  private cancelMapSave(): void {
    if (this.mapSaveTimer) clearTimeout(this.mapSaveTimer);
    this.mapSaveTimer = null;
    this.mapToSave = null;
  }

  /** Deleted or expired at the control server: stop carrying traffic until someone re-authenticates. */
  private async lostRegistration(why: 'NODE_UNKNOWN' | 'NODE_EXPIRED'): Promise<void> {
    this.lastError =
      why === 'NODE_EXPIRED'
        ? 'node key expired: run `meshctl up --auth-key KEY` to re-authenticate'
        : 'this node was deleted at the control server: run `meshctl up --auth-key KEY` to join again';
    this.log(this.lastError);
    this.stopMapLoop();
    await this.stopEngine();
    this.live.clear();
    this.state = 'NeedsLogin';
    this.cancelMapSave();
    try {
      this.store.saveMap(null);
      if (why === 'NODE_UNKNOWN') this.update((s) => (s.node = null));
    } catch (err) {
      this.log((err as Error).message);
    }
  }

  // ---- queries -------------------------------------------------------------------

  /** `NAME.suffix`, the name the mesh's resolver answers for; null while control sends no DNS config. */
  private dnsName(name: string): string | null {
    const suffix = this.map?.dns?.suffix;
    return suffix ? `${name}.${suffix}` : null;
  }

  private findPeer(ref: string): NodeView | null {
    const peers = this.map?.peers ?? [];
    const suffix = this.map?.dns?.suffix;
    // a full name (nas.mesh.internal, with or without the root's dot) names the same peer as its first label
    let r = ref.toLowerCase().replace(/\.$/, '');
    if (suffix && r.endsWith(`.${suffix}`)) r = r.slice(0, -suffix.length - 1);
    return peers.find((p) => p.name === r || p.addresses.includes(ref) || p.name.split('.')[0] === r) ?? null;
  }

  status(): Status {
    return { ...this.statusWithoutPeers(), peers: this.peersByName().map((v) => this.peerStatus(v)) };
  }

  /**
   * status() as JSON text (`pretty`: as JSON.stringify(status, null, 2) writes it), the same bytes, at the cost of the
   * peers with an engine peer or routes: every other peer's entry is a function of its map view alone, and its text is
   * kept with the view (a delta that changes the peer brings a new view), so thousands of idle peers cost a string join.
   */
  statusJson(pretty: boolean): string {
    return this.statusJsonPieces(pretty).join('');
  }

  /**
   * statusJson's text in pieces of about STATUS_PIECE_CHARS, for writing one after another: at thousands of peers the
   * whole text is megabytes, and a string that large is made in V8's large-object space, which only a full collection
   * frees, so each `status` call would leave megabytes behind until one runs. Pieces die young instead.
   */
  statusJsonPieces(pretty: boolean): string[] {
    const s = this.statusWithoutPeers() as unknown as Record<string, unknown>;
    const keys = Object.keys(s);
    const at = keys.indexOf('peers');
    const head = Object.fromEntries(keys.slice(0, at).map((k) => [k, s[k]]));
    const tail = Object.fromEntries(keys.slice(at + 1).map((k) => [k, s[k]]));
    const suffix = this.map?.dns?.suffix ?? '';
    const items = this.peersByName().map((v) => {
      if (this.host?.hasEnginePeer(v.nodeKey) || v.routes?.length) return peerText(this.peerStatus(v), pretty);
      const cached = this.peerTexts.get(v);
      if (cached?.suffix === suffix)
        return pretty ? (cached.pretty ??= peerText(this.peerStatus(v), true)) : (cached.compact ??= peerText(this.peerStatus(v), false));
      const fresh: CachedPeerText = { suffix };
      if (pretty) fresh.pretty = peerText(this.peerStatus(v), true);
      else fresh.compact = peerText(this.peerStatus(v), false);
      this.peerTexts.set(v, fresh);
      return (pretty ? fresh.pretty : fresh.compact)!;
    });
    return statusPieces(head, items, tail, pretty, STATUS_PIECE_CHARS);
  }

  /** The map's peers in the order status lists them (by name), worked out again only when the map changed. */
  private peersByName(): NodeView[] {
    if (this.sortedFor === this.live.version) return this.sortedPeers;
    this.sortedPeers = [...(this.map?.peers ?? [])].sort((a, b) => byCodeUnits(a.name, b.name));
    this.sortedFor = this.live.version;
    return this.sortedPeers;
  }

  private statusWithoutPeers(): Status {
    const self = this.st.node;
    const peers: PeerStatus[] = [];
    const health: string[] = [];
    if (this.st.prefs.wantRunning && !this.connected && this.control) health.push(`not connected to the control server: ${this.lastError ?? 'connecting'}`);
    health.push(...this.dns.health());
    if (this.host && this.map) health.push(...forwardingHealth(gatewayDevices(this.map).length));
    health.push(...this.subnets.health(), ...this.advertiser.health());
    const exitState = exitNodeState(this.map, this.st.prefs);
    const exitHealth = exitNodeHealth(exitState);
    if (exitHealth) health.push(exitHealth);
    return {
      version: this.opts.version,
      backendState: this.state,
      self: self
        ? {
            name: self.name,
            dnsName: this.dnsName(self.name),
            ips: self.addresses,
            nodeKey: keyToText(publicKeyOf(this.nodePrivate())),
            os: process.platform,
            ifname: this.st.prefs.ifname,
            listenPort: this.host?.port ?? 0,
            endpoints: this.endpoints(),
            routes: this.subnets.status(this.map?.self ?? self, this.st.prefs, this.destinationStats.droppedDestination),
            advertiseExitNode: this.st.prefs.advertiseExitNode,
            exitNodeApproved: (this.map?.self ?? self).exitNode === true,
            ...ownerOf(this.map?.self ?? self),
          }
        : null,
      // the replica in use (a node given several fails over between them), else the first configured
      control: { url: this.control?.url ?? this.st.prefs.loginServer ?? null, connected: this.connected, lastError: this.lastError },
      exitNode: exitState,
      peers,
      devices: this.deviceStatus(),
      health,
      homeRegion: this.home,
      relays: this.host?.relays.status() ?? [],
      counters: this.host ? { ...this.host.counters(), acl: this.accessFilter.stats(), memory: memoryCounters(this.idleMemory) } : null,
    };
  }

  /** What the metrics endpoint reads at each scrape (metrics.ts): state and counters the parts already keep. */
  metricsView(): DaemonMetricsView {
    return {
      backendState: this.state,
      wantRunning: this.st.prefs.wantRunning,
      controlConnected: this.connected,
      peerPaths: (this.map?.peers ?? []).map((v) => this.host?.peerState(v.nodeKey)?.path.kind ?? 'none'),
      engine: this.host?.counters() ?? null,
      relays: this.host?.relays.status() ?? [],
      relayFrames: this.host?.relays.frameCounts() ?? null,
      acl: this.accessFilter.stats(),
      droppedDestination: this.destinationStats.droppedDestination,
      dns: this.dns.counters(),
    };
  }

  /** The map's devices, by name; for those this node is the gateway of, what their WireGuard peer shows. */
  private deviceStatus(): DeviceStatus[] {
    const self = this.map?.self.name;
    const out = (this.map?.devices ?? []).map((d): DeviceStatus => {
      const key = d.gateway === self ? keyFromText(d.publicKey) : null;
      const wg = key ? (this.host?.plainPeerState(key) ?? null) : null;
      return {
        name: d.name,
        ips: d.addresses,
        gateway: d.gateway,
        viaSelf: d.gateway === self,
        endpoint: wg?.endpoint ?? null,
        lastHandshake: wg && wg.lastHandshakeWallMs > 0 ? isoTime(wg.lastHandshakeWallMs) : null,
        txBytes: wg?.txBytes ?? 0,
        rxBytes: wg?.rxBytes ?? 0,
      };
    });
    return out.sort((a, b) => byCodeUnits(a.name, b.name));
  }

  private peerStatus(v: NodeView): PeerStatus {
    const wg = this.host?.peerState(v.nodeKey) ?? null;
    const path = wg?.path ?? null;
    return {
      name: v.name,
      dnsName: this.dnsName(v.name),
      ips: v.addresses,
      nodeKey: v.nodeKey,
      os: v.os,
      online: v.online,
      lastSeen: v.lastSeen,
      active: wg?.active ?? false,
      path:
        !path || path.kind === 'none'
          ? { kind: 'none' }
          : path.kind === 'direct'
            ? { kind: 'direct', endpoint: endpointKey(path.endpoint), latencyMs: path.latencyMs, trusted: path.trusted }
            : { kind: 'relay', region: path.region },
      lastHandshake: wg && wg.lastHandshakeWallMs > 0 ? isoTime(wg.lastHandshakeWallMs) : null,
      txBytes: wg?.txBytes ?? 0,
      rxBytes: wg?.rxBytes ?? 0,
      endpoints: v.endpoints,
      ...(v.routes?.length ? { routes: this.subnets.peerRoutes(v) } : {}),
      ...(v.exitNode ? { exitNode: true } : {}),
      ...ownerOf(v),
    };
  }

  async ping(ref: string, timeoutMs: number): Promise<PingResponse> {
    if (!this.host || !this.map) throw new ApiError('NOT_RUNNING', 'meshctl is not up: run `meshctl up`');
    const v = this.findPeer(ref);
    if (!v) throw new ApiError('NOT_FOUND', `no peer "${ref}" in the network: see \`meshctl status\``);
    const r = await this.host.ping(keyFromText(v.nodeKey)!, timeoutMs);
    const pong = !r
      ? null
      : r.kind === 'direct'
        ? { via: 'direct' as const, endpoint: endpointKey(r.endpoint), latencyMs: r.latencyMs }
        : { via: 'relay' as const, region: r.region, latencyMs: r.latencyMs };
    return { name: v.name, ip: v.addresses[0]!, pong };
  }

  /** A fresh network report (the daemon's socket, its relay map), with the home region and relay connections. */
  async netcheckReport(): Promise<NetcheckResponse> {
    if (!this.host || !this.map) throw new ApiError('NOT_RUNNING', 'meshctl is not up: run `meshctl up`');
    const report = (await this.netcheck())!;
    return { ...report, homeRegion: this.home, relays: this.host.relays.status() };
  }

  whois(ip: string): WhoisResponse {
    try {
      ip = parseIp(ip).text; // the map holds canonical text
    } catch {
      throw new ApiError('BAD_REQUEST', `${JSON.stringify(ip.slice(0, 64))} is not an IP address`);
    }
    const self = this.st.node;
    if (self?.addresses.includes(ip)) {
      return { name: self.name, ips: self.addresses, nodeKey: self.nodeKey, os: process.platform, self: true, ...ownerOf(this.map?.self ?? self) };
    }
    const v = this.map?.peers.find((p) => p.addresses.includes(ip));
    if (!v) throw new ApiError('NOT_FOUND', `no node has the address ${ip}`);
    return { name: v.name, ips: v.addresses, nodeKey: v.nodeKey, os: v.os, self: false, ...ownerOf(v) };
  }

  async close(): Promise<void> {
    // the daemon exits: the newest map goes to disk for the next start
    const pending = this.mapToSave;
    this.cancelMapSave();
    if (pending) this.writeMap(pending);
    this.idleMemory.stop();
    this.stopMapLoop();
    await this.stopEngine();
  }
}

/** A peer's entry in status as JSON text, by itself or as one element of the peers list in JSON.stringify(status, null, 2). */
function peerText(p: PeerStatus, pretty: boolean): string {
  // a JSON string holds no raw newline: each one is JSON.stringify's own indentation, two levels deeper in the list
  return pretty ? JSON.stringify(p, null, 2).replaceAll('\n', '\n    ') : JSON.stringify(p);
}

interface CachedPeerText {
  /** the DNS suffix the text's dnsName was made with */
  suffix: string;
  compact?: string;
  pretty?: string;
}

/** A node's owner and tags as status and whois show them: only the fields control sent. */
function ownerOf(v: NodeView): { user?: string; tags?: string[] } {
  return { ...(v.user !== undefined ? { user: v.user } : {}), ...(v.tags?.length ? { tags: v.tags } : {}) };
}

/** Every control URL the node keeps (replicas), its login server first. */
function controlUrls(p: Prefs): string[] {
  return p.loginServers.length > 0 ? p.loginServers : p.loginServer ? [p.loginServer] : [];
}

/**
 * The control URLs an `up` uses: those it gives; or the one it gives, with the
 * node's other replicas after it when it is one of them; or the node's own.
 */
function upServers(req: UpRequest, p: Prefs): string[] {
  if (req.loginServers) return req.loginServers;
  const known = controlUrls(p);
  if (req.loginServer === undefined) return known;
  return known.includes(req.loginServer) ? [req.loginServer, ...known.filter((u) => u !== req.loginServer)] : [req.loginServer];
}
