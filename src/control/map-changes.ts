// Which nodes' maps a change can have altered. Every snapshot of the network
// is compared with the one before: a node whose view (as a peer, its
// advertisement, its devices) changed, appeared or left is "seen" changed, and
// reaches the maps of the nodes that may see it; a node whose packet filter
// or peer set the policy engine recomputed is changed for its own map only;
// a change to what every map shares (prefixes, relays, names, the policy
// itself) reaches every map. Each change gets a sequence number, and a stream
// remembers the number of the last map it was sent and the peers that map
// could show, so a broadcast builds maps only for the streams a change may
// reach.
import type { NodeView, OptionalPeerField } from '../netmap/types.js';
import type { PolicyEngine } from '../policy/engine.js';
import type { NetworkSnapshot } from './snapshot.js';

/**
 * Changes kept in the log. A stream last served before the oldest kept change
 * gets a whole map (a full-map stream: rebuilt, and sent only if it differs
 * from the last one it got). 256 changes are over 6 s of back-to-back 25 ms
 * broadcasts: a stream that takes data never falls that far behind, and the
 * log's entries are a few node ids each.
 */
export const MAX_CHANGE_LOG_ENTRIES = 256;

/**
 * What maps show of one node as a peer, with the view before its last
 * change, so a stream whose node holds that older view gets a patch of the
 * fields that changed instead of the whole entry.
 */
export interface PeerHistory {
  /** the change that brought the node into maps (since then it has been in them without a break) */
  addedSeq: number;
  /** the change that made its view what it is now */
  curSeq: number;
  view: NodeView;
  json: string;
  /** its view before that change (null: none since it came), current since `prevSeq` */
  prev: NodeView | null;
  prevSeq: number;
  /** the patch from `prev` to `view`, as JSON, built once for every stream that needs it */
  patch?: string | null;
}

/** What changed after a given change: the union of the log's entries since. */
export interface ChangesSince {
  seen: ReadonlySet<number>;
  own: ReadonlySet<number>;
  /** the policy engine was replaced: every node's filter and peers may differ */
  engine: boolean;
  relays: boolean;
  dns: boolean;
  devices: boolean;
}

/** What a stream was last sent. */
export interface SentMap {
  /** the change count of the snapshot the map came from */
  seq: number;
  /** the peers that map could show (a copy), or null for every node */
  visible: ReadonlySet<number> | null;
  /** a digest of the map line, so an identical map is not sent again */
  digest: string;
}

interface Change {
  seq: number;
  /** nodes whose view changed: the maps that show them (before or after) change */
  seen: Set<number>;
  /** nodes whose own filter or peers the policy recomputed */
  own: ReadonlySet<number>;
}

export class MapChanges {
  private seq = 0;
  /** changes up to this number are no longer in the log */
  private forgotten = 0;
  private sharedSeq = 0;
  private readonly log: Change[] = [];
  private readonly keys = new Map<number, string>();
  private shared: string | null = null;
  private engine: PolicyEngine | null | undefined = undefined;
  /** the engine the section numbers last saw (a new one is a change to every node's filter and peers) */
  private engineSeen: PolicyEngine | null | undefined = undefined;
  private readonly history = new Map<number, PeerHistory>();
  /** the last change to each part every map shares, and the parts' JSON then */
  private readonly sectionSeq = { prefixes: 0, relays: 0, dns: 0, devices: 0, engine: 0 };
  private sections: ReturnType<NetworkSnapshot['sectionJson']> | null = null;

  /** A node maps show now: its view and the changes that made it. */
  peer(id: number): PeerHistory | undefined {
    return this.history.get(id);
  }

  /**
   * What changed after change `seq`, or null when the log no longer reaches
   * back that far or the mesh prefixes changed (then only a whole map will do).
   */
  since(seq: number): ChangesSince | null {
    if (seq < this.forgotten || this.sectionSeq.prefixes > seq) return null;
    const c = this.sectionSeq;
    const out = { seen: new Set<number>(), own: new Set<number>(), engine: c.engine > seq, relays: c.relays > seq, dns: c.dns > seq, devices: c.devices > seq };
    let i = this.log.length;
    while (i > 0 && this.log[i - 1]!.seq > seq) i--;
    // the common case, a stream one change behind, takes that change's sets as they are
    if (i === this.log.length - 1) return { ...out, seen: this.log[i]!.seen, own: this.log[i]!.own };
    for (; i < this.log.length; i++) {
      for (const id of this.log[i]!.seen) out.seen.add(id);
      for (const id of this.log[i]!.own) out.own.add(id);
    }
    return out;
  }

  /** The JSON of node `id`'s patch from its previous view to its current one, or null when they show the same. */
  patchJson(id: number): string | null {
    const h = this.history.get(id)!;
    if (h.patch === undefined) h.patch = h.prev ? peerPatchJson(h.prev, h.view) : null;
    return h.patch;
  }

  /** The number of the latest change. */
  get current(): number {
    return this.seq;
  }

  /**
   * Records what changed since the last snapshot: `snap`'s nodes against the
   * last ones seen (when `views` is false only the policy part is recorded),
   * and `touched`, the nodes the policy engine recomputed.
   */
  observe(snap: NetworkSnapshot, touched: ReadonlySet<number>, views = true): number {
    const seen = new Set<number>();
    let shared = false;
    if (snap.engine !== this.engine) {
      shared = this.engine !== undefined;
      this.engine = snap.engine;
    }
    if (views) {
      if (this.shared !== null && this.shared !== snap.sharedJson) shared = true;
      this.shared = snap.sharedJson;
      const present = new Set<number>();
      for (const id of snap.ids()) {
        present.add(id);
        const key = snap.nodeKey(id)!;
        if (this.keys.get(id) !== key) {
          seen.add(id);
          this.keys.set(id, key);
        }
      }
      for (const id of this.keys.keys()) {
        if (present.has(id)) continue;
        seen.add(id);
        this.keys.delete(id);
      }
    }
    const sections = views ? snap.sectionJson() : null;
    const sectionsChanged = sections !== null && this.sections !== null && SECTIONS.some((k) => sections[k] !== this.sections![k]);
    if (!shared && !sectionsChanged && seen.size === 0 && touched.size === 0) return this.seq;
    this.seq++;
    if (shared) this.sharedSeq = this.seq;
    if (snap.engine !== this.engineSeen) {
      this.engineSeen = snap.engine;
      this.sectionSeq.engine = this.seq;
    }
    if (sections) {
      for (const k of SECTIONS) if (this.sections && sections[k] !== this.sections[k]) this.sectionSeq[k] = this.seq;
      this.sections = sections;
      this.record(snap, seen);
    }
    this.log.push({ seq: this.seq, seen, own: touched });
    while (this.log.length > MAX_CHANGE_LOG_ENTRIES) this.forgotten = this.log.shift()!.seq;
    return this.seq;
  }

  /** Brings the peer history up to change `this.seq`: `seen` are the nodes whose view changed, appeared or left. */
  private record(snap: NetworkSnapshot, seen: ReadonlySet<number>): void {
    for (const id of seen) {
      const piece = snap.peer(id);
      const h = this.history.get(id);
      if (!piece) {
        this.history.delete(id);
        continue;
      }
      if (!h) {
        this.history.set(id, { addedSeq: this.seq, curSeq: this.seq, view: piece.view, json: piece.json, prev: null, prevSeq: 0 });
        continue;
      }
      if (h.json === piece.json) continue;
      h.prev = h.view;
      h.prevSeq = h.curSeq;
      h.view = piece.view;
      h.json = piece.json;
      h.curSeq = this.seq;
      h.patch = undefined;
    }
  }

  /**
   * Whether the map of node `id` may differ from `sent`, given the peers it
   * may see now (null: every node). False only when no change since then
   * touched the node, its filter, or a node its old or new map could show.
   */
  mayHaveChanged(id: number, sent: SentMap | null, visibleNow: ReadonlySet<number> | null): boolean {
    if (!sent || sent.seq < this.forgotten || this.sharedSeq > sent.seq) return true;
    for (let i = this.log.length - 1; i >= 0 && this.log[i]!.seq > sent.seq; i--) {
      const c = this.log[i]!;
      if (c.own.has(id) || c.seen.has(id)) return true;
      if (c.seen.size === 0) continue;
      if (sent.visible === null || visibleNow === null) return true;
      for (const s of c.seen) if (sent.visible.has(s) || visibleNow.has(s)) return true;
    }
    return false;
  }
}

const SECTIONS = ['prefixes', 'relays', 'dns', 'devices'] as const;

const OPTIONAL_FIELDS: ReadonlySet<string> = new Set<OptionalPeerField>(['routes', 'primaryRoutes', 'exitNode', 'user', 'tags']);

/** The patch that turns peer view `a` into `b` (the same node), as the JSON of a PeerPatch; null when they show the same. */
export function peerPatchJson(a: NodeView, b: NodeView): string | null {
  const set: Record<string, unknown> = {};
  const unset: string[] = [];
  const A = a as unknown as Record<string, unknown>;
  const B = b as unknown as Record<string, unknown>;
  for (const k of Object.keys(B)) {
    if (k === 'id') continue;
    if (JSON.stringify(A[k]) !== JSON.stringify(B[k])) set[k] = B[k];
  }
  for (const k of Object.keys(A)) if (!(k in B) && OPTIONAL_FIELDS.has(k)) unset.push(k);
  if (Object.keys(set).length === 0 && unset.length === 0) return null;
  return JSON.stringify(unset.length ? { id: b.id, set, unset } : { id: b.id, set });
}
