// One read of the network, shared by every map of a broadcast: the valid
// nodes, their active routes and primaries, the devices, the name service and
// the policy's view are read once, and each node's peer view is serialized
// once. A node's map line is then joined from those pieces, so building it
// costs the size of that map, not another read and serialization of the whole
// network.
import type { DeviceView, DnsConfig, NetworkMap, NodeView, RelayRegion } from '../netmap/types.js';
import type { PolicyEngine } from '../policy/engine.js';
import type { ActiveRoutes } from './routes.js';
import type { NetworkView, PeerPiece } from './network-view.js';
import type { DeviceRecord, NodeRecord } from './store.js';

/** How a node is shown: as a peer (`self` false) or to itself; `extraAllowed` are its devices' addresses. */
export type ViewFn = (
  n: NodeRecord,
  online: boolean,
  routes: { active: ActiveRoutes; primaries: Map<string, number>; extraAllowed?: string[]; self?: boolean },
) => NodeView;

export interface SnapshotParts {
  /** the nodes maps may show, in id order */
  valid: NodeRecord[];
  active: Map<number, ActiveRoutes>;
  primaries: Map<string, number>;
  /** devices whose gateway is in `valid`, in id order */
  devices: DeviceRecord[];
  dns: DnsConfig;
  /** the access policy brought up to date with `valid`; null: no policy (every node sees every other) */
  engine: PolicyEngine | null;
  ipv4Prefix: string;
  ipv6Prefix: string;
  relays: RelayRegion[];
  isOnline: (id: number) => boolean;
  view: ViewFn;
  /** the pieces kept from the last snapshot: a node whose inputs did not change is not shown and serialized again */
  cache?: NetworkView;
}

interface DevicePiece {
  gatewayId: number;
  /** as other nodes see it, and as its gateway sees it (with the device's public key) */
  view: DeviceView;
  own: DeviceView;
  json: string;
  ownJson: string;
}

export class NetworkSnapshot {
  private readonly byId = new Map<number, NodeRecord>();
  /** each valid node's position in id order, to list a node's peers in the same order as the network */
  private readonly order = new Map<number, number>();
  private readonly peers = new Map<number, PeerPiece>();
  private readonly devices: DevicePiece[];
  private readonly deviceAddrs = new Map<number, string[]>();
  /** each gateway's devices as it sees them, serialized */
  private readonly ownDevicesJson = new Map<number, string[]>();
  /** the part every map shares (prefixes, relays, names) as JSON members */
  readonly sharedJson: string;
  /** the change count of the network when this snapshot was taken (set by the registry) */
  seq = 0;

  constructor(private readonly p: SnapshotParts) {
    p.valid.forEach((n, i) => {
      this.byId.set(n.id, n);
      this.order.set(n.id, i);
    });
    for (const d of p.devices) this.deviceAddrs.set(d.gatewayId, [...(this.deviceAddrs.get(d.gatewayId) ?? []), `${d.ipv4}/32`, `${d.ipv6}/128`]);
    this.devices = p.devices.map((d) => {
      const view: DeviceView = { id: d.id, name: d.name, addresses: [d.ipv4, d.ipv6], gateway: this.byId.get(d.gatewayId)!.hostname };
      const own: DeviceView = { ...view, publicKey: d.publicKey };
      const piece = { gatewayId: d.gatewayId, view, own, json: JSON.stringify(view), ownJson: JSON.stringify(own) };
      this.ownDevicesJson.set(d.gatewayId, [...(this.ownDevicesJson.get(d.gatewayId) ?? []), piece.ownJson]);
      return piece;
    });
    for (const n of p.valid) {
      const online = p.isOnline(n.id);
      const build = (): PeerPiece => {
        const view = p.view(n, online, this.routesOf(n, false));
        const json = JSON.stringify(view);
        const key = `${json}|${JSON.stringify([n.advertisedRoutes, n.advertisedExit])}|${(this.ownDevicesJson.get(n.id) ?? []).join(',')}`;
        return { view, json, key };
      };
      this.peers.set(n.id, p.cache ? p.cache.peer(n, online, this.routingSig(n), build) : build());
    }
    p.cache?.prune(this.byId);
    this.sharedJson = [
      `"ipv4Prefix":${JSON.stringify(p.ipv4Prefix)}`,
      `"ipv6Prefix":${JSON.stringify(p.ipv6Prefix)}`,
      `"relays":${JSON.stringify(p.relays)}`,
      `"dns":${JSON.stringify(p.dns)}`,
    ].join(',');
  }

  /**
   * What a node's view takes from the routing state besides its record: its
   * active routes, which of them it is primary for, its devices ('' when it
   * has none of these, as most nodes).
   */
  private routingSig(n: NodeRecord): string {
    const a = this.p.active.get(n.id)!;
    const devices = this.deviceAddrs.get(n.id);
    const own = this.ownDevicesJson.get(n.id);
    if (a.routes.length === 0 && !a.exitNode && !devices && !own) return '';
    return JSON.stringify([a.routes, a.exitNode, a.routes.map((r) => this.p.primaries.get(r) === n.id), devices ?? [], own ?? []]);
  }

  private routesOf(n: NodeRecord, self: boolean) {
    return { active: this.p.active.get(n.id)!, primaries: this.p.primaries, extraAllowed: this.deviceAddrs.get(n.id), self };
  }

  /** A node maps may show (valid: key not expired, not pending), or undefined. */
  node(id: number): NodeRecord | undefined {
    return this.byId.get(id);
  }

  ids(): IterableIterator<number> {
    return this.byId.keys();
  }

  get engine(): PolicyEngine | null {
    return this.p.engine;
  }

  /**
   * Everything about node `id` that any map shows (its view as a peer, what
   * it advertises, its devices), as one comparable string.
   */
  nodeKey(id: number): string | undefined {
    return this.peers.get(id)?.key;
  }

  /** The peers node `id` may see, or null when it sees every node (no policy). */
  visibleTo(id: number): ReadonlySet<number> | null {
    return this.p.engine ? (this.p.engine.peersOf(id) ?? EMPTY) : null;
  }

  /** The ids of the peers shown to `selfId`, in id order. */
  private shownPeers(selfId: number): number[] {
    const visible = this.visibleTo(selfId);
    if (visible === null) return this.p.valid.filter((n) => n.id !== selfId).map((n) => n.id);
    return [...visible].filter((id) => id !== selfId && this.order.has(id)).sort((a, b) => this.order.get(a)! - this.order.get(b)!);
  }

  private shownDevices(selfId: number): DevicePiece[] {
    const visible = this.visibleTo(selfId);
    return this.devices.filter((d) => d.gatewayId === selfId || visible === null || visible.has(d.gatewayId));
  }

  /** A node's view as a peer and its JSON (the same for every map that shows it), or undefined when no map shows it. */
  peer(id: number): { view: NodeView; json: string } | undefined {
    return this.peers.get(id);
  }

  /** How many peers the map of `selfId` shows. */
  shownCount(selfId: number): number {
    const visible = this.visibleTo(selfId);
    if (visible === null) return this.p.valid.length - (this.order.has(selfId) ? 1 : 0);
    let n = 0;
    for (const id of visible) if (id !== selfId && this.order.has(id)) n++;
    return n;
  }

  /** The JSON of `self`'s own view. */
  selfJson(self: NodeRecord): string {
    return JSON.stringify(this.p.view(self, true, this.routesOf(self, true)));
  }

  /** The JSON of the devices the map of `selfId` shows (`[]` for none). */
  devicesJsonFor(selfId: number): string {
    return `[${this.shownDevices(selfId)
      .map((d) => (d.gatewayId === selfId ? d.ownJson : d.json))
      .join(',')}]`;
  }

  /** The JSON of the packet filter of `selfId`'s map, or `null` when maps carry none (no policy). */
  filterJsonFor(selfId: number): string {
    return this.p.engine ? JSON.stringify(this.p.engine.filterOf(selfId) ?? []) : 'null';
  }

  /** The parts every map shares, one JSON text each, so a change to one is told apart from a change to another. */
  sectionJson(): { prefixes: string; relays: string; dns: string; devices: string } {
    return {
      prefixes: `${this.p.ipv4Prefix} ${this.p.ipv6Prefix}`,
      relays: JSON.stringify(this.p.relays),
      dns: JSON.stringify(this.p.dns),
      devices: this.devices.map((d) => d.ownJson).join(','),
    };
  }

  /** The map of `self` (a node of this snapshot). */
  mapFor(self: NodeRecord): NetworkMap {
    const map: NetworkMap = {
      self: this.p.view(self, true, this.routesOf(self, true)),
      peers: this.shownPeers(self.id).map((id) => this.peers.get(id)!.view),
      ipv4Prefix: this.p.ipv4Prefix,
      ipv6Prefix: this.p.ipv6Prefix,
      relays: this.p.relays,
      dns: this.p.dns,
    };
    const devices = this.shownDevices(self.id).map((d) => (d.gatewayId === self.id ? d.own : d.view));
    if (devices.length) map.devices = devices;
    if (this.p.engine) map.packetFilter = this.p.engine.filterOf(self.id) ?? [];
    return map;
  }

  /**
   * The map stream line of `self`: the JSON of `{type: 'map', map: mapFor(self)}` (with `seq` when given) and a newline,
   * joined from serialized pieces.
   */
  lineFor(self: NodeRecord, seq?: number): string {
    const peers = this.shownPeers(self.id).map((id) => this.peers.get(id)!.json);
    const head = seq === undefined ? '{"type":"map","map":' : `{"type":"map","seq":${seq},"map":`;
    let line = `${head}{"self":${this.selfJson(self)},"peers":[${peers.join(',')}],${this.sharedJson}`;
    const devices = this.shownDevices(self.id).map((d) => (d.gatewayId === self.id ? d.ownJson : d.json));
    if (devices.length) line += `,"devices":[${devices.join(',')}]`;
    if (this.p.engine) line += `,"packetFilter":${JSON.stringify(this.p.engine.filterOf(self.id) ?? [])}`;
    return `${line}}}\n`;
  }
}

const EMPTY: ReadonlySet<number> = new Set();
