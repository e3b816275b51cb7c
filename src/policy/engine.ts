// The policy applied to the network, kept current per change: every node's
// packet filter and visible peers, recomputed only where a change reaches.
//
// A node X that joins, leaves or changes (owner, tags, addresses, routes,
// exit, devices) changes only
//   - X's own filter and peers;
//   - the filter of each node B that X may reach or that may reach X, before
//     or after the change (B's rules list X's addresses as a source, or X as
//     a router B's traffic goes through), and whether X is among B's peers.
// Visibility is symmetric, so that set is X's peers before and after. Each
// acl entry's source prefixes are cached and dropped only when X matches the
// entry's sources (before or after). A new policy recomputes every node.
import type { FilterRule } from '../netmap/types.js';
import { filterFor, NodeIndex, peersOf, selectsNode, sourcePrefixes } from './compile.js';
import { PeerSet } from './peer-set.js';
import type { Policy, PolicyNode } from './types.js';

/** Keys already computed: a caller that passes the same node object again (control's network view) is not serialized again. */
const keys = new WeakMap<PolicyNode, string>();

/** The fields of a node the policy depends on, as one comparable string. */
function policyKey(n: PolicyNode): string {
  let k = keys.get(n);
  if (k === undefined) keys.set(n, (k = JSON.stringify([n.user, n.tags, n.addresses, n.routes, n.exitNode, n.deviceAddresses])));
  return k;
}

const NO_PEERS: ReadonlySet<number> = new Set<number>();

export class PolicyEngine {
  private readonly index = new NodeIndex();
  private readonly keys = new Map<number, string>();
  private readonly filters = new Map<number, FilterRule[]>();
  /** each node's peers; a change makes new sets that share the old ones' storage (peer-set.ts) */
  private readonly peers = new Map<number, PeerSet>();
  private readonly sourceCache = new Map<number, string[]>();
  /** how many node recomputations the last change cost (for tests and the bench) */
  lastRecomputed = 0;

  constructor(
    readonly policy: Policy,
    /** the mesh prefixes: a destination inside them is never an exit node's */
    private readonly mesh: readonly string[],
    nodes: Iterable<PolicyNode> = [],
  ) {
    for (const n of nodes) {
      this.index.add(n);
      this.keys.set(n.id, policyKey(n));
    }
    this.recomputeAll();
  }

  filterOf(id: number): FilterRule[] | undefined {
    return this.filters.get(id);
  }

  /** Node `id`'s peers; a set is never changed once returned (a change makes a new one), so callers may keep it. */
  peersOf(id: number): ReadonlySet<number> | undefined {
    return this.peers.get(id);
  }

  /** Every node's rules and peers from scratch (a new policy, or a check against the incremental result). */
  recomputeAll(): void {
    this.sourceCache.clear();
    this.filters.clear();
    this.peers.clear();
    for (const n of this.index.nodes.values()) this.recompute(n);
    this.lastRecomputed = this.index.nodes.size;
  }

  private sources = (i: number): string[] => {
    let s = this.sourceCache.get(i);
    if (!s) this.sourceCache.set(i, (s = sourcePrefixes(this.policy.acls[i]!, this.index)));
    return s;
  };

  private recompute(n: PolicyNode): void {
    this.filters.set(n.id, filterFor(this.policy, n, this.index, this.mesh, this.sources));
    this.peers.set(n.id, PeerSet.of(peersOf(this.policy, n, this.index, this.mesh)));
  }

  /** Drops the cached sources of the acl entries whose sources select `n`. */
  private dropSources(n: PolicyNode): void {
    for (const [i, acl] of this.policy.acls.entries())
      if (acl.src.some((s) => s.kind !== 'prefix' && s.kind !== 'all' && selectsNode(s, n))) this.sourceCache.delete(i);
  }

  /**
   * Brings the engine to `nodes` (the whole current set), touching only the
   * nodes that changed and their edges; returns the ids whose filter or peers
   * may have changed.
   */
  sync(nodes: Iterable<PolicyNode>): Set<number> {
    const seen = new Set<number>();
    const touched = new Set<number>();
    let recomputed = 0;
    for (const n of nodes) {
      seen.add(n.id);
      const key = policyKey(n);
      if (this.keys.get(n.id) === key) continue;
      recomputed += this.upsert(n, key, touched);
    }
    for (const id of [...this.index.nodes.keys()]) if (!seen.has(id)) recomputed += this.remove(id, touched);
    this.lastRecomputed = recomputed;
    return touched;
  }

  private upsert(n: PolicyNode, key: string, touched: Set<number>): number {
    const old = this.index.nodes.get(n.id);
    const before: ReadonlySet<number> = this.peers.get(n.id) ?? NO_PEERS;
    if (old) {
      this.dropSources(old);
      this.index.remove(n.id);
    }
    this.index.add(n);
    this.keys.set(n.id, key);
    this.dropSources(n);
    this.recompute(n);
    const after = this.peers.get(n.id)!;
    touched.add(n.id);
    let count = 1;
    // every node that was or is a peer of n: `after`, then those of `before` that are no longer
    const edge = (id: number): void => {
      const b = this.index.nodes.get(id);
      if (!b) return;
      this.filters.set(id, filterFor(this.policy, b, this.index, this.mesh, this.sources));
      const p = this.peers.get(id)!;
      // a new set rather than a change to the old one: callers may hold the old one as what a node was last shown
      if (after.has(id) !== p.has(n.id)) this.peers.set(id, after.has(id) ? p.with(n.id) : p.without(n.id));
      touched.add(id);
      count++;
    };
    for (const id of after) edge(id);
    for (const id of before) if (!after.has(id)) edge(id);
    return count;
  }

  private remove(id: number, touched: Set<number>): number {
    const old = this.index.nodes.get(id)!;
    const before: ReadonlySet<number> = this.peers.get(id) ?? NO_PEERS;
    this.dropSources(old);
    this.index.remove(id);
    this.keys.delete(id);
    this.filters.delete(id);
    this.peers.delete(id);
    let count = 0;
    for (const b of before) {
      const node = this.index.nodes.get(b);
      if (!node) continue;
      this.filters.set(b, filterFor(this.policy, node, this.index, this.mesh, this.sources));
      const p = this.peers.get(b);
      if (p) this.peers.set(b, p.without(id));
      touched.add(b);
      count++;
    }
    return count;
  }
}
