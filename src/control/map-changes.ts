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
import type { PolicyEngine } from '../policy/engine.js';
import type { NetworkSnapshot } from './snapshot.js';

/**
 * Changes kept in the log. A stream last served before the oldest kept change
 * gets its map rebuilt (and sent only if it differs from the last one it got):
 * 64 changes are over 1.5 s of back-to-back 25 ms broadcasts, far more than a
 * stream that takes data falls behind.
 */
export const MAX_CHANGE_LOG_ENTRIES = 64;

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
    if (!shared && seen.size === 0 && touched.size === 0) return this.seq;
    this.seq++;
    if (shared) this.sharedSeq = this.seq;
    this.log.push({ seq: this.seq, seen, own: touched });
    while (this.log.length > MAX_CHANGE_LOG_ENTRIES) this.forgotten = this.log.shift()!.seq;
    return this.seq;
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
