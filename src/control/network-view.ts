// The network as maps show it, kept from one broadcast to the next so that a
// change costs the nodes it touched, not a rebuild of every node's piece.
//
// The registry's copy of the store replaces a node's record (a new object)
// exactly when a write touched that node, and keeps the same object for every
// other node; a re-read of the whole network (start, another server's change
// on a shared database) makes every record new. So a node's derived pieces —
// its view as a peer and that view's JSON, the string the change tracker
// compares, its policy inputs — are valid while the record object, its online
// flag and its routing inputs (active routes, which of them it is primary for,
// its devices) are the same, and are rebuilt otherwise. The store stays the
// truth: nothing here is written back, and dropping the view only costs one
// rebuild.
import type { NodeView } from '../netmap/types.js';
import type { PolicyNode } from '../policy/types.js';
import type { NodeRecord } from './store.js';

/** A node's view as a peer, its JSON, and everything maps show of it as one comparable string. */
export interface PeerPiece {
  view: NodeView;
  json: string;
  /** the view, its advertisement and its devices (what the change tracker compares) */
  key: string;
}

interface Entry {
  rec: NodeRecord;
  online: boolean;
  /** the routing inputs of its view ('' for a node with no routes, exit or devices: most of them) */
  sig: string;
  piece: PeerPiece;
}

interface PolicyEntry {
  rec: NodeRecord;
  sig: string;
  node: PolicyNode;
}

export class NetworkView {
  private readonly peers = new Map<number, Entry>();
  private readonly policy = new Map<number, PolicyEntry>();
  /** pieces rebuilt by the last snapshot (for the bench and tests) */
  rebuilt = 0;

  /** The piece of node `n` (built by `build` when its inputs changed since the last time). */
  peer(n: NodeRecord, online: boolean, sig: string, build: () => PeerPiece): PeerPiece {
    const e = this.peers.get(n.id);
    if (e && e.rec === n && e.online === online && e.sig === sig) return e.piece;
    const piece = build();
    this.peers.set(n.id, { rec: n, online, sig, piece });
    this.rebuilt++;
    return piece;
  }

  /** Node `n` as the policy engine sees it (the same object while its inputs are the same, so the engine skips it). */
  policyNode(n: NodeRecord, sig: string, build: () => PolicyNode): PolicyNode {
    const e = this.policy.get(n.id);
    if (e && e.rec === n && e.sig === sig) return e.node;
    const node = build();
    this.policy.set(n.id, { rec: n, sig, node });
    return node;
  }

  /** Forgets the nodes not in `present` once the view holds more than them (left, expired, pending). */
  prune(present: ReadonlyMap<number, unknown>): void {
    for (const m of [this.peers, this.policy]) {
      if (m.size <= present.size) continue;
      for (const id of m.keys()) if (!present.has(id)) m.delete(id);
    }
  }

  /** Starts the count of rebuilt pieces for the next snapshot. */
  begin(): void {
    this.rebuilt = 0;
  }
}
