// The node's copy of its network map as the map stream builds it: a whole map
// sets it, each delta changes it. A delta applies only on top of the state it
// names as its base, and only to peers the node holds; anything else means the
// copy and control disagree, and the delta is refused whole (the copy is left
// as it was) so the node can ask for a whole map again. Peers are kept by id,
// so applying a delta costs the size of the delta, not of the network.
import { applyFilterPatch, FilterPatchError } from './filter-patch.js';
import { MAX_FILTER_SOURCES, parseDevices, parseNodeView } from './parse.js';
import type { DeviceView, DnsConfig, FilterRule, MapDelta, NetworkMap, NodeView, RelayRegion } from './types.js';

/** The delta does not fit the map the node holds (a gap in the sequence, an unknown peer); the cure is a whole map. */
export class MapDeltaError extends Error {
  override readonly name = 'MapDeltaError';
}

export class NetmapState {
  /** the state number of the last map or delta applied; null: none, or a map without one */
  seq: number | null = null;
  private self: NodeView | null = null;
  private readonly peers = new Map<number, NodeView>();
  private ipv4Prefix = '';
  private ipv6Prefix = '';
  private relays: RelayRegion[] = [];
  private dns: DnsConfig | undefined;
  private devices: DeviceView[] | undefined;
  private packetFilter: FilterRule[] | undefined;

  /** The mesh prefixes of the map held, for parsing the next delta; undefined before the first map. */
  get mesh(): { ipv4: string; ipv6: string } | undefined {
    return this.self ? { ipv4: this.ipv4Prefix, ipv6: this.ipv6Prefix } : undefined;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /** The node's own view in the map held (undefined before the first map). */
  get selfView(): NodeView | undefined {
    return this.self ?? undefined;
  }

  peer(id: number): NodeView | undefined {
    return this.peers.get(id);
  }

  /** Replaces the whole state with a map (already parsed). */
  setMap(map: NetworkMap, seq: number | null): void {
    this.seq = seq;
    this.self = map.self;
    this.peers.clear();
    for (const p of map.peers) this.peers.set(p.id, p);
    this.ipv4Prefix = map.ipv4Prefix;
    this.ipv6Prefix = map.ipv6Prefix;
    this.relays = map.relays;
    this.dns = map.dns;
    this.devices = map.devices;
    this.packetFilter = map.packetFilter;
  }

  /**
   * Applies a parsed delta, or throws MapDeltaError (or MapParseError for a
   * patch whose fields disagree) and changes nothing.
   */
  apply(d: MapDelta): void {
    if (this.self === null || this.seq === null) throw new MapDeltaError(`delta ${d.seq} came before a whole map`);
    if (d.base !== this.seq) throw new MapDeltaError(`delta ${d.seq} applies to state ${d.base}, but this node holds state ${this.seq}`);
    const mesh = { ipv4: this.ipv4Prefix, ipv6: this.ipv6Prefix };
    // every check first, so a refused delta leaves the copy whole
    const patched = (d.patches ?? []).map((p, i) => {
      const old = this.peers.get(p.id);
      if (!old) throw new MapDeltaError(`delta ${d.seq} patches peer ${p.id}, which this node does not hold`);
      const merged: Record<string, unknown> = { ...old, ...p.set };
      for (const k of p.unset ?? []) delete merged[k];
      return parseNodeView(merged, `delta.patches[${i}]`, { mesh });
    });
    const self = d.self ?? this.self;
    const renamed = d.self !== undefined || (d.peers?.length ?? 0) > 0 || patched.some((p) => p.name !== this.peers.get(p.id)!.name);
    const devices = d.devices === undefined ? this.devices : d.devices.length ? d.devices : undefined;
    if (devices && (d.devices !== undefined || renamed || (d.removed?.length ?? 0) > 0)) {
      // devices are checked against the nodes of the resulting map: each gateway among them, no name taken twice
      const names = new Map<number, NodeView>(this.peers);
      for (const p of [...(d.peers ?? []), ...patched]) names.set(p.id, p);
      for (const id of d.removed ?? []) names.delete(id);
      parseDevices(devices, 'delta.devices', { self, peers: [...names.values()], ipv4Prefix: this.ipv4Prefix, ipv6Prefix: this.ipv6Prefix });
    }
    let filter = this.packetFilter;
    if (d.packetFilter !== undefined) filter = d.packetFilter ?? undefined;
    else if (d.filterPatch) {
      if (!filter) throw new MapDeltaError(`delta ${d.seq} patches a packet filter this node does not hold`);
      try {
        filter = applyFilterPatch(filter, d.filterPatch, MAX_FILTER_SOURCES);
      } catch (err) {
        if (err instanceof FilterPatchError) throw new MapDeltaError(`delta ${d.seq}: ${err.message}`);
        throw err;
      }
    }
    this.self = self;
    // a removal of a peer the node does not hold changes nothing: control may name a peer that came and went while the stream was behind
    for (const id of d.removed ?? []) this.peers.delete(id);
    for (const p of d.peers ?? []) this.peers.set(p.id, p);
    for (const p of patched) this.peers.set(p.id, p);
    if (d.relays !== undefined) this.relays = d.relays;
    if (d.dns !== undefined) this.dns = d.dns ?? undefined;
    if (d.devices !== undefined) this.devices = devices;
    this.packetFilter = filter;
    this.seq = d.seq;
  }

  /** The map held, as a whole map would carry it (peers in id order, as control lists them). */
  toMap(): NetworkMap {
    return { ...this.withoutPeers(), peers: [...this.peers.values()].sort((a, b) => a.id - b.id) };
  }

  /** The map held but its peers (which peer(id) gives one by one): what a reader that keeps its own peer list needs. */
  withoutPeers(): Omit<NetworkMap, 'peers'> {
    if (!this.self) throw new MapDeltaError('no map yet');
    const map: Omit<NetworkMap, 'peers'> = {
      self: this.self,
      ipv4Prefix: this.ipv4Prefix,
      ipv6Prefix: this.ipv6Prefix,
      relays: this.relays,
    };
    if (this.dns !== undefined) map.dns = this.dns;
    if (this.devices !== undefined) map.devices = this.devices;
    if (this.packetFilter !== undefined) map.packetFilter = this.packetFilter;
    return map;
  }
}
