// The daemon's network map, kept in step with the map stream at the cost of each change: a whole map (the first
// one, a resync, netmap.json at start) replaces it; a delta, already applied to the stream's copy (netmap/delta.ts),
// changes only the peers it names here, and says what it changed, so that everything derived from the map (the
// engine's peer table, the filters, DNS, subnet routes) is redone for those parts alone. Peers stay in id order, as a
// whole map lists them, so `map` equals what the stream's copy would give as a whole map (test/daemon/live-map.test.ts).
import { keyFromText } from '../crypto/keys.js';
import type { NetmapState } from '../netmap/delta.js';
import type { MapDelta, NetworkMap, NodeView } from '../netmap/types.js';
import { activeExitPeer, type ExitNodePrefs, exitNodeView } from './exit-node.js';

/** What one map or delta changed, for the parts derived from the map. */
export interface MapChange {
  /** a whole map: everything derived is rebuilt from it */
  whole: boolean;
  /** peers before the change (removed, or the old view of one changed) */
  before: NodeView[];
  /** peers after the change (added, or the new view of one changed) */
  after: NodeView[];
  /** node keys of those peers, old and new: the engine's entries to bring in step */
  nodeKeys: Set<string>;
  self: boolean;
  relays: boolean;
  dns: boolean;
  devices: boolean;
  packetFilter: boolean;
  /** a name or address of a node or device, the DNS config or the mesh prefixes may differ: the DNS zone is rebuilt */
  names: boolean;
}

export const wholeChange = (): MapChange => ({
  whole: true,
  before: [],
  after: [],
  nodeKeys: new Set(),
  self: true,
  relays: true,
  dns: true,
  devices: true,
  packetFilter: true,
  names: true,
});

/** A peer the engine takes: online, with a node key and a disco key that parse. */
export const engineWants = (v: NodeView): boolean => v.online && keyFromText(v.nodeKey) !== null && keyFromText(v.discoKey) !== null;

const sameTexts = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export class LiveMap {
  private current: NetworkMap | null = null;
  /** the peers holding each node key, in id order (one each, unless control sends a key twice) */
  private readonly byNodeKey = new Map<string, NodeView[]>();
  /** counts the changes: a reader's cache of something derived from the map is good while this is unchanged */
  version = 0;

  get map(): NetworkMap | null {
    return this.current;
  }

  clear(): void {
    this.version++;
    this.current = null;
    this.byNodeKey.clear();
  }

  /** Replaces the map with a whole one (its peers in id order, as a whole map and toMap list them). */
  setWhole(map: NetworkMap): MapChange {
    const sorted = map.peers.every((v, i) => i === 0 || map.peers[i - 1]!.id < v.id);
    this.version++;
    this.current = sorted ? map : { ...map, peers: [...map.peers].sort((a, b) => a.id - b.id) };
    this.byNodeKey.clear();
    for (const v of this.current.peers) this.index(v);
    return wholeChange();
  }

  /**
   * Brings the map in step with `state` after it applied `d`: the peers `d` names are removed, added or replaced
   * (binary search by id), the rest of the map is taken from the state. Without a map yet, the state's whole map.
   */
  applyDelta(state: NetmapState, d: MapDelta): MapChange {
    const old = this.current;
    if (!old) return this.setWhole(state.toMap());
    const peers = old.peers;
    const before: NodeView[] = [];
    const after: NodeView[] = [];
    let names = d.self !== undefined || d.dns !== undefined || d.devices !== undefined;
    for (const id of d.removed ?? []) {
      const i = this.find(id);
      if (i < 0) continue;
      before.push(peers[i]!);
      this.unindex(peers[i]!);
      peers.splice(i, 1);
      names = true;
    }
    const ids = [...(d.peers ?? []).map((p) => p.id), ...(d.patches ?? []).map((p) => p.id)];
    for (const id of ids) {
      const v = state.peer(id);
      if (!v) continue;
      const i = this.find(id);
      if (i >= 0) {
        const was = peers[i]!;
        before.push(was);
        this.unindex(was);
        peers[i] = v;
        if (was.name !== v.name || !sameTexts(was.addresses, v.addresses)) names = true;
      } else {
        peers.splice(-i - 1, 0, v);
        names = true;
      }
      this.index(v);
      after.push(v);
    }
    const rest = state.withoutPeers();
    const map: NetworkMap = { ...rest, peers };
    const nodeKeys = new Set<string>();
    for (const v of before) nodeKeys.add(v.nodeKey);
    for (const v of after) nodeKeys.add(v.nodeKey);
    const change: MapChange = {
      whole: false,
      before,
      after,
      nodeKeys,
      self: d.self !== undefined,
      relays: d.relays !== undefined,
      dns: d.dns !== undefined,
      devices: d.devices !== undefined,
      packetFilter: map.packetFilter !== old.packetFilter,
      names,
    };
    this.current = map;
    this.version++;
    return change;
  }

  /** The view the engine takes for a node key: the first peer (in id order) holding it that the engine wants. */
  engineView(nodeKey: string): NodeView | undefined {
    return this.byNodeKey.get(nodeKey)?.find(engineWants);
  }

  /** The index of peer `id`, or -(insertion point) - 1 when the map has none. */
  private find(id: number): number {
    const peers = this.current!.peers;
    let lo = 0;
    let hi = peers.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = peers[mid]!.id;
      if (at === id) return mid;
      if (at < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1;
  }

  private index(v: NodeView): void {
    const list = this.byNodeKey.get(v.nodeKey);
    if (!list) return void this.byNodeKey.set(v.nodeKey, [v]);
    let i = list.length;
    while (i > 0 && list[i - 1]!.id > v.id) i--;
    list.splice(i, 0, v);
  }

  private unindex(v: NodeView): void {
    const list = this.byNodeKey.get(v.nodeKey);
    if (!list) return;
    const i = list.indexOf(v);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byNodeKey.delete(v.nodeKey);
  }
}

/**
 * What the engine's table needs after a delta (EngineHost.applyPeers): the node keys to bring in step (those the
 * delta named, and the exit node's old and new one when which peer that is changed) and the view of each, the exit
 * node's with the default routes as withExitNode gives them. `exitBefore`: the exit node's view the engine last got.
 */
export function enginePeerStep(
  live: LiveMap,
  map: NetworkMap,
  change: MapChange,
  prefs: ExitNodePrefs,
  exitBefore: NodeView | undefined,
): { nodeKeys: Set<string>; viewOf: (nodeKey: string) => NodeView | undefined; exitPeer: NodeView | undefined } {
  const exitPeer = activeExitPeer(map, prefs);
  const nodeKeys = new Set(change.nodeKeys);
  if (exitPeer !== exitBefore) {
    if (exitBefore) nodeKeys.add(exitBefore.nodeKey);
    if (exitPeer) nodeKeys.add(exitPeer.nodeKey);
  }
  const viewOf = (key: string): NodeView | undefined => {
    const v = live.engineView(key);
    return v && v === exitPeer ? exitNodeView(v) : v;
  };
  return { nodeKeys, viewOf, exitPeer };
}
