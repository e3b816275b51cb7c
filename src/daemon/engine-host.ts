// Owns the data plane of a running node: the TUN interface with the node's
// mesh addresses and routes, the UDP socket, the WireGuard device and path
// selection, and turns each network map into WireGuard peers.
import { Device } from '../engine/device/device.js';
import { PlainPeers, type PlainPeerConfig } from '../engine/device/plain-peers.js';
import type { PacketFilterHooks, PacketHook } from '../engine/device/filter.js';
import type { Clock } from '../engine/clock.js';
import { PathManager, type PathInfo, type PathPeerConfig, type PathTimers, type PingResult } from '../engine/paths/paths.js';
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
}

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
  /** node key (base64) → the map's view of each peer we configured */
  private peerViews = new Map<string, NodeView>();
  /** the node keys (hex) of those peers: path selection owns them */
  private meshKeys = new Set<string>();
  /** devices on stock WireGuard this node is the gateway of */
  private readonly plain: PlainPeers;

  private constructor(readonly opts: EngineHostOptions) {
    this.device = new Device({ mtu: opts.mtu, timers: opts.engineTimers, logger: opts.logger, timestampFloor: opts.timestampFloor });
    this.device.setPrivateKey(opts.nodePrivateKey);
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
      h.tun = await openTun({ name: opts.ifname, mtu: opts.mtu, log: opts.logger });
      await setLinkUp(opts.ifname, opts.mtu);
      await h.device.attachBind(h.pathBind, opts.port);
      // the WireGuard/disco socket (and STUN, which shares it) bypasses the tunnel by policy routing
      await h.device.applySet({ fwmark: MESH_FWMARK, replacePeers: false, peers: [] });
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
   * Makes the WireGuard peers match the map: online peers only, each allowed
   * exactly the addresses control assigned it (so a peer can only send from
   * addresses it owns), with its reported endpoints as path candidates.
   */
  applyMap(map: NetworkMap): void {
    const wanted = map.peers.filter((p) => p.online && keyFromText(p.nodeKey) && keyFromText(p.discoKey));
    const keep = new Set(wanted.map((p) => p.nodeKey));
    for (const old of this.peerViews.keys()) if (!keep.has(old)) this.device.removePeer(keyFromText(old)!);
    const pathPeers: PathPeerConfig[] = [];
    for (const v of wanted) {
      const key = keyFromText(v.nodeKey)!;
      const peer = this.device.getPeer(key) ?? this.device.addPeer(key);
      this.device.allowedIps.removeByValue(peer);
      for (const a of [...v.allowedIps, ...(this.opts.extraAllowedIps?.get(v.name) ?? [])]) {
        try {
          const c = parseCidr(a);
          this.device.allowedIps.insert(c.address, c.bits, peer);
        } catch {
          this.opts.logger(`peer ${v.name}: ignoring bad allowed IP ${a}`);
        }
      }
      const candidates: Endpoint[] = [];
      for (const e of v.endpoints) {
        try {
          candidates.push(parseEndpoint(e));
        } catch {
          /* a malformed endpoint from control is skipped, not fatal */
        }
      }
      pathPeers.push({ nodeKey: key, discoKey: keyFromText(v.discoKey)!, candidates, homeRelay: v.homeRelay });
    }
    this.peerViews = new Map(wanted.map((v) => [v.nodeKey, v]));
    this.meshKeys = new Set(pathPeers.map((p) => p.nodeKey.toString('hex')));
    this.paths.setPeers(pathPeers);
  }

  /**
   * Makes the WireGuard peers on plain WireGuard (devices this node is the gateway of) exactly `list`: classic peers
   * with no preset endpoint, learned from each one's handshakes and roaming with its packets, on the same UDP port.
   * Call it after applyMap: a key that is also a mesh node's stays the mesh node's.
   */
  setPlainPeers(list: PlainPeerConfig[]): void {
    this.plain.set(list, (k) => this.meshKeys.has(k.toString('hex')));
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
    return this.peerViews.has(nodeKey);
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
  peerState(nodeKey: string): PeerState | null {
    const key = this.peerViews.has(nodeKey) ? keyFromText(nodeKey) : null;
    const wg = key ? this.device.getPeer(key) : undefined;
    if (!key || !wg) return null;
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
    return this.paths.ping(nodeKey, timeoutMs);
  }

  async stop(): Promise<void> {
    this.paths.stop();
    this.relays.stop();
    if (this.gateway && this.portMapped && this.portMapProtocol === 'NAT-PMP') await natpmpUnmap(this.gateway, this.port).catch(() => undefined);
    await this.device.close();
    await this.tun?.close();
    this.tun = null;
  }
}
