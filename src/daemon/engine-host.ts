// Owns the data plane of a running node: the TUN interface with the node's
// mesh addresses and routes, the UDP socket, the WireGuard device and path
// selection, and turns each network map into WireGuard peers.
import { Device } from '../engine/device/device.js';
import { PlainPeers, type PlainPeerConfig } from '../engine/device/plain-peers.js';
import type { PacketFilterHooks, PacketHook } from '../engine/device/filter.js';
import { LazyTimer, type Clock } from '../engine/clock.js';
import { PathManager, type PathInfo, type PathTimers, type PingResult } from '../engine/paths/paths.js';
import type { Peer } from '../engine/device/peer.js';
import { PeerTable, type PeerPrefix, type TablePeer } from './peer-table.js';
import { engineWants } from './live-map.js';
import { PathBind } from '../engine/paths/pathbind.js';
import { endpointKey } from '../engine/conn/endpoint.js';
import { Netchecker, type StunTarget } from '../nat/netcheck.js';
import { MESH_FWMARK } from '../util/marked-socket.js';
import type { NetReport } from '../netmap/netreport.js';
import { RelayManager } from './relays.js';
import { addressTowards, defaultGateway, mapPort, natpmpUnmap, probePortMapping } from '../nat/portmap.js';
import { httpsLatency } from './https-latency.js';
import { UdpBind } from '../engine/conn/udp.js';
import { parseCidr, parseEndpoint } from '../engine/device/uapi.js';
import type { EngineTimers } from '../engine/device/constants.js';
import type { TimestampFloorStore } from '../engine/device/tai64n-source.js';
import { publicKeyOf } from '../crypto/x25519.js';
import { keyFromText } from '../crypto/keys.js';
import type { NetworkMap, NodeView } from '../netmap/types.js';
import { openTun, type TunDevice } from '../tun/device.js';
import { addAddressesAndRoutes, setLinkUp } from '../tun/netconf.js';
import { TunError } from '../tun/errors.js';
import { hostPrefix, parseIp, parsePrefix } from '../util/netaddr.js';
import type { Endpoint } from '../engine/conn/endpoint.js';
import { tuneJitForDataPath } from '../util/jit-tiering.js';

/** How many peers a map change added to the engine's table and removed from it, and how many it holds now. */
export interface PeerCounts {
  added: number;
  removed: number;
  total: number;
}

/** 1280 (IPv6's minimum) fits inside any path, relays included, without fragmentation; Tailscale uses the same. */
export const DEFAULT_MESH_MTU = 1280;

export interface EngineHostOptions {
  /** a trusted direct path to a peer stopped answering (a sign the network changed: net-change.ts) */
  onDirectLost?: () => void;
  ifname: string;
  port: number;
  mtu: number;
  nodePrivateKey: Buffer;
  discoPrivateKey: Buffer;
  engineTimers?: Partial<EngineTimers>;
  pathTimers?: Partial<PathTimers>;
  logger: (msg: string) => void;
  localEndpoints?: (port: number) => string[];
  /** tests only: peer name → prefixes added to what control assigned (MESHCTL_TEST_EXTRA_ALLOWED_IPS) */
  extraAllowedIps?: Map<string, string[]>;
  /** the wall clock relays are told: the control server's time as the node estimates it (server-clock.ts) */
  wallNow?: () => number;
  /** where the handshake timestamps' floor persists (the state dir), so they never go back across a restart */
  timestampFloor?: TimestampFloorStore;
  /** up to this many online peers every one gets an engine peer at once (default EAGER_PEER_LIMIT) */
  eagerPeerLimit?: number;
  /** a lazy peer's engine peer is dropped after this long without a byte either way (default LAZY_PEER_IDLE_MS) */
  lazyIdleMs?: number;
  /** tests: the engine's clock */
  clock?: Clock;
  /** tests: a TUN device made by the caller (in memory): no interface is opened or configured */
  tun?: TunDevice;
}

/**
 * Up to this many online peers, each gets its engine peer (WireGuard state, timers, disco probing of its candidates)
 * when the map brings it, so a path is found before the first packet. ~2 KB and a disco ping per heartbeat each: a
 * hundred cost little; at thousands the probing alone keeps a core busy, so beyond it peers are lazy.
 */
export const EAGER_PEER_LIMIT = 100;
/** A lazy peer's engine peer goes after 5 min without traffic, as Tailscale trims idle peers from its WireGuard config. */
export const LAZY_PEER_IDLE_MS = 5 * 60_000;
/** The idle check runs this many times per idle period while lazy engine peers exist. */
const IDLE_CHECKS_PER_PERIOD = 5;

export function describePath(p: PathInfo): string {
  if (p.kind === 'direct') return `direct ${endpointKey(p.endpoint)}${p.trusted ? '' : ' (unconfirmed)'}`;
  if (p.kind === 'relay') return `relay "${p.region}"`;
  return 'no path';
}

/** One configured peer as the data plane sees it. */
export interface PeerState {
  path: PathInfo;
  /** it moved a packet within path selection's active window */
  active: boolean;
  /** 0: no handshake yet */
  lastHandshakeWallMs: number;
  txBytes: number;
  rxBytes: number;
}

export class EngineHost {
  private readonly device: Device;
  private destinationCheck: PacketHook | null = null;
  private accessHooks: Pick<PacketFilterHooks, 'filterIn' | 'filterOut'> | null = null;
  private readonly paths: PathManager;
  private tun: TunDevice | null = null;
  private readonly bind: UdpBind;
  private readonly pathBind: PathBind;
  readonly relays: RelayManager;
  private readonly netcheck: Netchecker;
  /** extra endpoints (STUN-mapped, port-mapped) learned by netcheck, reported with the local ones */
  extraEndpoints: string[] = [];
  /** the public ip:port the gateway forwards to us (NAT-PMP), if any */
  portMapped: string | null = null;
  portMapProtocol: string | null = null;
  private gateway: string | null = null;
  /** our NAT's mapping from the last netcheck (port prediction): null when unknown or when we are not behind NAT */
  private natMapping: 'easy' | 'hard' | null = null;
  private configuredAddresses: string[] = [];
  /** the map's online peers as the engine needs them (peer-table.ts) */
  private readonly table = new PeerTable();
  /** the map holds at most eagerPeerLimit online peers: every one has an engine peer, none is dropped when idle */
  private eager = true;
  private readonly eagerPeerLimit: number;
  private readonly lazyIdleMs: number;
  private readonly idleTimer: LazyTimer;
  /** devices on stock WireGuard this node is the gateway of */
  private readonly plain: PlainPeers;

  private constructor(readonly opts: EngineHostOptions) {
    this.device = new Device({ mtu: opts.mtu, timers: opts.engineTimers, logger: opts.logger, timestampFloor: opts.timestampFloor, clock: opts.clock });
    this.device.setPrivateKey(opts.nodePrivateKey);
    this.eagerPeerLimit = opts.eagerPeerLimit ?? EAGER_PEER_LIMIT;
    this.lazyIdleMs = opts.lazyIdleMs ?? LAZY_PEER_IDLE_MS;
    this.idleTimer = new LazyTimer(this.device.clock, () => this.dropIdle());
    // lazy peers: the first packet either way creates the engine peer from the table
    // (also asked when the device found only a route owner: a lazy peer's own address beats an exit node's default route)
    this.device.onRouteMiss = (pkt, dst, len) => {
      const p = this.table.lookupAt(pkt, dst, len);
      if (!p) return undefined;
      return p.engine ?? this.activate(p);
    };
    this.device.onUnknownInitiator = (pub) => {
      const p = this.table.getByHex(pub.toString('hex'));
      return p && !p.active ? this.activate(p) : undefined;
    };
    this.plain = new PlainPeers(this.device, opts.logger);
    this.bind = new UdpBind(opts.logger);
    this.relays = new RelayManager(
      opts.nodePrivateKey,
      (region, src, pkt) => this.fromRelay(region, src, pkt),
      opts.logger,
      (region) => this.paths.relayConnected(region),
      opts.wallNow,
    );
    this.paths = new PathManager(
      this.device,
      this.bind,
      { privateKey: opts.discoPrivateKey, publicKey: publicKeyOf(opts.discoPrivateKey) },
      publicKeyOf(opts.nodePrivateKey),
      {
        timers: opts.pathTimers,
        relay: this.relays,
        localEndpoints: () => this.endpointCandidates(),
        natMapping: () => this.natMapping,
        log: opts.logger,
        onPathChange: (k, p) => {
          opts.logger(`path to ${k.toString('base64').slice(0, 8)}…: ${describePath(p)}`);
          // a change away from direct is reported only when a trusted direct path of an active peer stopped answering
          // (an idle peer's lapsed path still shows as direct, unconfirmed)
          if (p.kind !== 'direct') opts.onDirectLost?.();
        },
        onUnknownDisco: (hex) => {
          const p = this.table.getByDisco(hex);
          if (p && !p.active) this.activate(p);
        },
      },
    );
    this.pathBind = new PathBind(this.bind, this.paths);
    this.netcheck = new Netchecker({
      send: (pkt, ep) => this.bind.send(pkt, ep),
      httpsLatency,
      portMapping: () => this.refreshPortMapping(),
      // IPv6 STUN only with an IPv6 address other than link-local (localEndpoints leaves those out)
      ipv6Usable: () => this.localEndpointTexts().some((e) => e.startsWith('[')),
    });
    this.pathBind.onStun = (buf) => this.netcheck.onStun(buf);
  }

  static async start(opts: EngineHostOptions): Promise<EngineHost> {
    const h = new EngineHost(opts);
    try {
      if (opts.tun) h.tun = opts.tun;
      else {
        h.tun = await openTun({ name: opts.ifname, mtu: opts.mtu, log: opts.logger });
        await setLinkUp(opts.ifname, opts.mtu);
      }
      await h.device.attachBind(h.pathBind, opts.port);
      // the WireGuard/disco socket (and STUN, which shares it) bypasses the tunnel by policy routing
      if (!opts.tun) await h.device.applySet({ fwmark: MESH_FWMARK, replacePeers: false, peers: [] });
      h.device.attachTun((p) => h.tun!.write(p));
      h.tun.onPackets((pkts) => h.device.sendPackets(pkts));
      tuneJitForDataPath();
    } catch (err) {
      await h.stop();
      throw err;
    }
    return h;
  }

  private fromRelay(region: string, src: Buffer, pkt: Buffer): void {
    this.paths.receiveRelayed(region, src, pkt);
  }

  /** Our endpoints for call-me-maybe: local addresses and what netcheck learned. */
  endpointCandidates(): Endpoint[] {
    const out: Endpoint[] = [];
    for (const e of [...this.localEndpointTexts(), ...this.extraEndpoints]) {
      try {
        out.push(parseEndpoint(e));
      } catch {
        /* skip */
      }
    }
    return out;
  }

  localEndpointTexts(): string[] {
    return this.opts.localEndpoints?.(this.port) ?? [];
  }

  /** Probes what the gateway offers and (re)maps the WireGuard port with NAT-PMP when it can. */
  private async refreshPortMapping(): Promise<string[]> {
    const gw = defaultGateway();
    const offered = await probePortMapping(gw);
    const order = (['NAT-PMP', 'PCP', 'UPnP'] as const).filter((p) => offered.includes(p));
    const me = gw && order.length ? await addressTowards(gw) : null;
    const m = gw && me ? await mapPort(gw, me, this.port, [...order]).catch(() => null) : null;
    if (m && m.external !== this.portMapped) this.opts.logger(`${m.protocol}: ${m.external} maps to our port ${this.port}`);
    this.portMapped = m?.external ?? null;
    this.portMapProtocol = m?.protocol ?? null;
    this.gateway = gw;
    return offered;
  }

  async runNetcheck(targets: StunTarget[], onMapped?: (mapped: NetReport['mapped']) => void): Promise<NetReport> {
    const r = await this.netcheck.run(targets, undefined, onMapped);
    const mappedIp = r.ipv4?.replace(/:\d+$/, '') ?? null;
    const behindNat = mappedIp !== null && !this.localEndpointTexts().some((e) => e.replace(/:\d+$/, '') === mappedIp);
    this.natMapping = r.mappingVariesByDestIP === null || !behindNat ? null : r.mappingVariesByDestIP ? 'hard' : 'easy';
    return r;
  }

  get port(): number {
    return this.device.port;
  }
  /** the UDP reader thread's counters (null where libuv alone reads) */
  get udpReader(): UdpBind['readerStats'] {
    return this.bind.readerStats;
  }
  get ifname(): string {
    return this.opts.ifname;
  }

  /** Puts the node's addresses on the interface and routes the mesh prefixes into it. */
  /** The texts come from the control server or state.json: each is parsed into a typed prefix first, and one that does not parse refuses the whole call. */
  async configureAddresses(self: NodeView, prefixes: string[]): Promise<void> {
    const refuse = (field: string, err: unknown): never => {
      const why = `${field} is bad (${(err as Error).message})`;
      throw new TunError('TUN_CONFIG_FAILED', `refusing to configure ${this.opts.ifname}: ${why}; the control server's map or state.json is corrupt`);
    };
    const addresses = self.addresses.map((a, i) => {
      try {
        return hostPrefix(parseIp(a));
      } catch (err) {
        return refuse(`this node's address ${i}`, err);
      }
    });
    const routes = prefixes.map((p, i) => {
      try {
        return parsePrefix(p);
      } catch (err) {
        return refuse(`mesh prefix ${i}`, err);
      }
    });
    const want = addresses.map((a) => a.text);
    if (want.join() === this.configuredAddresses.join()) return;
    await addAddressesAndRoutes(this.opts.ifname, addresses, routes);
    this.configuredAddresses = want;
  }

  /**
   * Makes the peer table match the map: online peers only, each allowed exactly the addresses control assigned it (so a
   * peer can only send from addresses it owns), with its reported endpoints as path candidates. A peer whose entry is
   * unchanged costs a string comparison. Engine peers (WireGuard and path state) exist for every peer while the map
   * holds at most `eagerPeerLimit` online peers; beyond that only for peers that talk (lazy peers): one is made on the
   * first packet either way (a packet from the TUN for its addresses, a handshake initiation or disco packet from its
   * keys) and dropped after `lazyIdleMs` without traffic.
   */
  applyMap(map: NetworkMap): PeerCounts {
    // the first peer (in map order) the engine takes for each node key
    const wanted = new Map<string, NodeView>();
    for (const v of map.peers) if (!wanted.has(v.nodeKey) && engineWants(v)) wanted.set(v.nodeKey, v);
    let added = 0;
    let removed = 0;
    for (const v of wanted.values()) if (this.upsert(v)) added++;
    for (const p of [...this.table.values()]) {
      if (wanted.has(p.nodeKeyText)) continue;
      this.drop(p);
      removed++;
    }
    return this.settle(added, removed);
  }

  /**
   * The peer table brought in step for `nodeKeys` alone, each to `viewOf(key)` (undefined: no peer the engine takes
   * holds it now): what a delta costs, instead of a walk of every peer. The result equals applyMap of the whole map
   * when `viewOf` answers as applyMap would pick (the first peer in map order that the engine takes).
   */
  applyPeers(nodeKeys: Iterable<string>, viewOf: (nodeKey: string) => NodeView | undefined): PeerCounts {
    let added = 0;
    let removed = 0;
    for (const key of nodeKeys) {
      const v = viewOf(key);
      if (v) {
        if (this.upsert(v)) added++;
        continue;
      }
      const p = this.table.get(key);
      if (!p) continue;
      this.drop(p);
      removed++;
    }
    return this.settle(added, removed);
  }

  /** Enters or updates the table entry of `v` (one the engine takes); true when it is a new entry. */
  private upsert(v: NodeView): boolean {
    const extra = this.opts.extraAllowedIps?.get(v.name) ?? [];
    const signature = `${v.discoKey}|${v.allowedIps.join(',')}|${extra.join(',')}|${v.endpoints.join(',')}|${v.homeRelay ?? ''}`;
    const old = this.table.get(v.nodeKey);
    if (old?.signature === signature) return false;
    // engineWants(v) held: both keys parse
    const nodeKey = keyFromText(v.nodeKey)!;
    const discoKey = keyFromText(v.discoKey)!;
    const p: TablePeer = {
      nodeKeyText: v.nodeKey,
      nodeKey,
      hex: nodeKey.toString('hex'),
      discoKey,
      discoHex: discoKey.toString('hex'),
      prefixes: this.prefixesOf(v, extra),
      candidates: this.candidatesOf(v),
      homeRelay: v.homeRelay,
      signature,
      active: false,
      engine: null,
      lastBytes: 0,
      lastUsedMs: this.device.clock.now(),
    };
    const wasActive = old?.active === true && old.discoHex === p.discoHex;
    if (old?.active && !wasActive) this.deactivate(old);
    this.table.set(p);
    if (wasActive) {
      // an engine peer in use keeps its sessions: only its AllowedIPs and path candidates follow the map
      p.active = true;
      p.engine = old.engine;
      p.lastBytes = old.lastBytes;
      p.lastUsedMs = old.lastUsedMs;
      this.configureEngine(p);
    }
    return !old;
  }

  private drop(p: TablePeer): void {
    if (p.active) this.deactivate(p);
    this.table.delete(p);
  }

  /** Eager or lazy as the table's size says, after a change of it. */
  private settle(added: number, removed: number): PeerCounts {
    this.eager = this.table.size <= this.eagerPeerLimit;
    // up to the limit every peer has its engine peer: a walk of at most eagerPeerLimit entries
    if (this.eager) for (const p of this.table.values()) if (!p.active) this.activate(p);
    // past the limit, engine peers made while it was eager become lazy ones: the idle check looks at them too
    if (!this.eager && !this.idleTimer.pending) this.idleTimer.mod(Math.max(1, Math.ceil(this.lazyIdleMs / IDLE_CHECKS_PER_PERIOD)));
    return { added, removed, total: this.table.size };
  }

  private prefixesOf(v: NodeView, extra: string[]): PeerPrefix[] {
    const out: PeerPrefix[] = [];
    for (const a of [...v.allowedIps, ...extra]) {
      try {
        const c = parseCidr(a);
        out.push({ address: c.address, bits: c.bits, family: c.family });
      } catch {
        this.opts.logger(`peer ${v.name}: ignoring bad allowed IP ${a}`);
      }
    }
    return out;
  }

  private candidatesOf(v: NodeView): Endpoint[] {
    const out: Endpoint[] = [];
    for (const e of v.endpoints) {
      try {
        out.push(parseEndpoint(e));
      } catch {
        /* a malformed endpoint from control is skipped, not fatal */
      }
    }
    return out;
  }

  /** Creates the engine peer of `p`: WireGuard peer, its AllowedIPs, path selection (which probes its candidates now). */
  private activate(p: TablePeer): Peer {
    const peer = this.device.addPeer(p.nodeKey);
    p.active = true;
    p.engine = peer;
    p.lastBytes = peer.rxBytes + peer.txBytes;
    p.lastUsedMs = this.device.clock.now();
    this.configureEngine(p);
    if (!this.eager && !this.idleTimer.pending) this.idleTimer.mod(Math.max(1, Math.ceil(this.lazyIdleMs / IDLE_CHECKS_PER_PERIOD)));
    return peer;
  }

  /** The engine peer's AllowedIPs and path candidates as the table says. */
  private configureEngine(p: TablePeer): void {
    const peer = this.device.getPeer(p.nodeKey) ?? this.device.addPeer(p.nodeKey);
    p.engine = peer;
    this.device.allowedIps.removeByValue(peer);
    for (const x of p.prefixes) this.device.allowedIps.insert(x.address, x.bits, peer);
    peer.routeOwner = p.prefixes.some((x) => x.bits < (x.family === 4 ? 32 : 128));
    this.paths.addPeer({ nodeKey: p.nodeKey, discoKey: p.discoKey, candidates: p.candidates, homeRelay: p.homeRelay });
  }

  private deactivate(p: TablePeer): void {
    this.device.removePeer(p.nodeKey);
    this.paths.removePeer(p.nodeKey);
    p.active = false;
    p.engine = null;
  }

  /** Lazy peers whose engine peer moved no bytes for lazyIdleMs lose it; the timer runs while any is active. */
  private dropIdle(): void {
    if (this.eager) return;
    const now = this.device.clock.now();
    let active = 0;
    for (const p of this.table.values()) {
      if (!p.active) continue;
      const wg = this.device.getPeer(p.nodeKey);
      const bytes = wg ? wg.rxBytes + wg.txBytes : 0;
      if (bytes !== p.lastBytes) {
        p.lastBytes = bytes;
        p.lastUsedMs = now;
      }
      if (now - p.lastUsedMs >= this.lazyIdleMs) this.deactivate(p);
      else active++;
    }
    if (active > 0) this.idleTimer.mod(Math.max(1, Math.ceil(this.lazyIdleMs / IDLE_CHECKS_PER_PERIOD)));
  }

  /** Each table entry as node key, what it was made from (its signature) and whether it has an engine peer, by node key. */
  tableEntries(): { nodeKey: string; signature: string; active: boolean }[] {
    const out = [...this.table.values()].map((p) => ({ nodeKey: p.nodeKeyText, signature: p.signature, active: p.active }));
    return out.sort((a, b) => (a.nodeKey < b.nodeKey ? -1 : a.nodeKey > b.nodeKey ? 1 : 0));
  }

  /** How many peers the table holds and how many of them have an engine peer now. */
  peerCounts(): { table: number; engine: number } {
    let engine = 0;
    for (const p of this.table.values()) if (p.active) engine++;
    return { table: this.table.size, engine };
  }

  /**
   * Makes the WireGuard peers on plain WireGuard (devices this node is the gateway of) exactly `list`: classic peers
   * with no preset endpoint, learned from each one's handshakes and roaming with its packets, on the same UDP port.
   * Call it after applyMap: a key that is also a mesh node's stays the mesh node's.
   */
  setPlainPeers(list: PlainPeerConfig[]): void {
    this.plain.set(list, (k) => this.table.getByHex(k.toString('hex')) !== undefined);
  }

  /** A device's WireGuard peer as this gateway holds it, or null if it holds none with that key. */
  plainPeerState(publicKey: Buffer): { endpoint: string | null; lastHandshakeWallMs: number; txBytes: number; rxBytes: number } | null {
    const p = this.plain.get(publicKey);
    if (!p || this.device.getPeer(publicKey) !== p) return null;
    return { endpoint: p.endpoint ? endpointKey(p.endpoint) : null, lastHandshakeWallMs: p.lastHandshakeWallMs, txBytes: p.txBytes, rxBytes: p.rxBytes };
  }

  /** The inbound packet filter (the destination check, destination-filter.ts); null passes everything. */
  setInboundFilter(hook: PacketHook | null): void {
    this.destinationCheck = hook;
    this.installFilters();
  }

  /** The access policy's stateful filter (acl-filter.ts), after the destination check; null: no policy, allow all. */
  setAccessFilter(hooks: Pick<PacketFilterHooks, 'filterIn' | 'filterOut'> | null): void {
    this.accessHooks = hooks;
    this.installFilters();
  }

  private installFilters(): void {
    const acl = this.accessHooks;
    const dst = this.destinationCheck ?? undefined;
    this.device.setPacketFilter(dst || acl ? { preFilterIn: dst, filterIn: acl?.filterIn, filterOut: acl?.filterOut } : null);
  }

  /** The engine's clock (what the access filter's flow timeouts run on). */
  get clock(): Clock {
    return this.device.clock;
  }

  isConfigured(nodeKey: string): boolean {
    return this.table.get(nodeKey) !== undefined;
  }

  // ---- what the daemon reads and asks of the data plane ------------------------------

  /** The counters of each part, for `status --json`. */
  counters() {
    return {
      engine: this.device.stats,
      aead: this.device.aeadName,
      tun: this.tun?.stats ?? null,
      udpReader: this.udpReader,
      udpSend: this.bind.sendStats,
      disco: this.paths.stats,
      birthday: this.paths.birthdayStats,
      sends: this.paths.sendStats,
      traffic: this.paths.traffic,
      stun: this.netcheck.stats,
    };
  }

  /** How many mesh peers are reached directly and how many through a relay now, for control's admin page. */
  pathCounts(): { direct: number; relay: number } {
    return this.paths.pathCounts();
  }

  /** Data the tunnel carried, both ways: packets written from the TUN plus packets routed to a peer. */
  activity(): number {
    return (this.tun?.stats.txPackets ?? 0) + this.device.stats.routed;
  }

  /** How many reader threads (TUN, UDP) are running now. */
  readerThreads(): number {
    return Number(this.tun?.stats.readerThread ?? false) + Number(this.udpReader?.thread ?? false);
  }

  /** A peer the last map configured (node key as text), or null if it is not one. */
  /** Whether the peer has an engine peer now: without one its state is a constant (peerState's lazy answer, or none). */
  hasEnginePeer(nodeKey: string): boolean {
    return this.table.get(nodeKey)?.active === true;
  }

  peerState(nodeKey: string): PeerState | null {
    const p = this.table.get(nodeKey);
    if (!p) return null;
    const key = p.nodeKey;
    const wg = p.active ? this.device.getPeer(key) : undefined;
    // a lazy peer without an engine peer: in the map, not talking
    if (!wg) return { path: { kind: 'none' }, active: false, lastHandshakeWallMs: 0, txBytes: 0, rxBytes: 0 };
    return {
      path: this.paths.pathOf(key),
      active: this.paths.isActive(key),
      lastHandshakeWallMs: wg.lastHandshakeWallMs,
      txBytes: wg.txBytes,
      rxBytes: wg.rxBytes,
    };
  }

  /** One disco ping to a peer over the path in use (null: no pong in time, or not a peer). */
  ping(nodeKey: Buffer, timeoutMs: number): Promise<PingResult | null> {
    // a ping is a packet to the peer: a lazy one gets its engine peer (and path probing) for it
    const p = this.table.getByHex(nodeKey.toString('hex'));
    if (p && !p.active) this.activate(p);
    return this.paths.ping(nodeKey, timeoutMs);
  }

  async stop(): Promise<void> {
    this.idleTimer.stop();
    this.paths.stop();
    this.relays.stop();
    if (this.gateway && this.portMapped && this.portMapProtocol === 'NAT-PMP') await natpmpUnmap(this.gateway, this.port).catch(() => undefined);
    await this.device.close();
    await this.tun?.close();
    this.tun = null;
  }
}
