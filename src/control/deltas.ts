// Map deltas for the streams of nodes that asked for them: after one whole
// map, a stream gets only what changed in its node's map. The change tracker
// (map-changes.ts) records each change once for the whole network: the nodes
// whose view changed, those whose filter or peers the policy recomputed, the
// shared parts that changed, and each node's view before and after. A
// stream's delta is then that change seen through its node's visibility:
//   - a node the map shows and the node holds unchanged since: nothing;
//   - one it holds at its previous view: the patch of the fields that changed
//     (built once per change, shared by every stream);
//   - one it does not hold (new to it, or changed twice since): the whole entry;
//   - one it may hold but the map no longer shows: its id, to remove;
// plus its own view, packet filter, devices, relays and DNS when they changed.
// So a change costs the nodes it reaches times its size, never a rebuild of
// every map. A stream too far behind (the log forgot its state, the mesh
// prefixes changed, or the delta would be about as large as the map) gets a
// whole map instead.
import { createHash } from 'node:crypto';
import { filterPatchOf } from '../netmap/filter-patch.js';
import { changedPeers } from '../policy/peer-set.js';
import type { FilterRule } from '../netmap/types.js';
import type { MapChanges } from './map-changes.js';
import type { NetworkSnapshot } from './snapshot.js';
import type { NodeRecord } from './store.js';

/**
 * Below this many changed peers a delta is always sent; above it, a delta
 * that names more than half the peers the map shows is replaced by the whole
 * map (about as large, and it resets the stream's state).
 */
export const DELTA_MIN_FULL_MAP_ENTRIES = 64;

/** What a delta stream's node holds. */
export interface DeltaSent {
  /** the state number the node last got (a delta's base) */
  base: number;
  /** the change its map is known to equal (base, or later when the changes since did not reach it) */
  at: number;
  /** the peers its map may show (a copy), or null for every node */
  visible: ReadonlySet<number> | null;
  /**
   * the packet filter it holds: the policy engine's own rules (shared, never
   * changed in place; null without a policy), to send only what changed
   */
  filter: readonly FilterRule[] | null;
  /** a digest of its devices, to send them only when they changed */
  devices: string;
}

/** How a stream takes deltas. */
export interface DeltaOptions {
  /** its node applies filter patches: a changed filter goes as a patch when that is smaller than the whole filter */
  filterPatches?: boolean;
  /**
   * Asked before a whole map is built in place of a delta (map-budget.ts):
   * false holds it back, and the stream stays where it was.
   */
  admitWhole?: () => boolean;
}

export interface DeltaLine {
  /** the line to write, or null when the change does not reach the node */
  line: string | null;
  full: boolean;
  sent: DeltaSent;
  /** a whole map was due and not admitted: nothing was built, `sent` is unchanged, the map is still due */
  deferred?: boolean;
}

const NO_RULES: readonly FilterRule[] = [];

/**
 * The delta's member for a filter that went from `held` to `now`: null when
 * they are equal, else a patch (when the node takes them and it is the
 * smaller) or the whole filter.
 */
function filterPart(held: readonly FilterRule[] | null, now: readonly FilterRule[] | null, patches: boolean): string | null {
  if (held === now) return null;
  if (held === null || now === null) return `"packetFilter":${JSON.stringify(now)}`;
  const patch = filterPatchOf(held, now);
  if (patch === null) return null;
  const whole = (): string => `"packetFilter":${JSON.stringify(now)}`;
  if (!patches) return whole();
  const part = `"filterPatch":${JSON.stringify(patch)}`;
  if (!patch.edits.some((e) => e.rule)) return part;
  // a patch of whole rules can be larger than the filter it makes
  const w = whole();
  return part.length >= w.length ? w : part;
}

const digest = (text: string): string => createHash('sha256').update(text).digest('base64');

/** The whole map of `self` as the first line of a delta stream (with its state number). */
export function fullMapLine(snap: NetworkSnapshot, self: NodeRecord): DeltaLine {
  const visible = snap.visibleTo(self.id);
  return {
    line: snap.lineFor(self, snap.seq),
    full: true,
    sent: {
      base: snap.seq,
      at: snap.seq,
      // the engine's own set, never changed in place (a change makes a new one): kept without a copy
      visible,
      filter: snap.engine ? (snap.engine.filterOf(self.id) ?? NO_RULES) : null,
      devices: digest(snap.devicesJsonFor(self.id)),
    },
  };
}

/** The delta that brings the node holding `sent` to `snap`, or a whole map when a delta will not do. */
export function deltaLine(snap: NetworkSnapshot, changes: MapChanges, self: NodeRecord, sent: DeltaSent, opts: DeltaOptions = {}): DeltaLine {
  if (snap.seq === sent.at) return { line: null, full: false, sent };
  const whole = (): DeltaLine => (opts.admitWhole && !opts.admitWhole() ? { line: null, full: true, sent, deferred: true } : fullMapLine(snap, self));
  const since = changes.since(sent.at);
  if (!since) return whole();
  const id = self.id;
  const visNow = snap.visibleTo(id);
  // the engine recomputes a node's peers only when it reports the node touched (or is replaced)
  const recomputed = since.engine || since.own.has(id);
  const visible = recomputed ? visNow : sent.visible;
  // a policy set or removed: every node's view of the network changes, a whole map is as small
  if ((visible === null) !== (sent.visible === null)) return whole();
  let candidates: ReadonlySet<number> = since.seen;
  if (recomputed && visible !== null && sent.visible !== null && visible !== sent.visible) {
    const c = new Set(since.seen);
    // the peers gained or lost: sets that share storage are compared by their edits only (peer-set.ts)
    for (const x of changedPeers(visible, sent.visible)) c.add(x);
    candidates = c;
  }
  const peers: string[] = [];
  const patches: string[] = [];
  const removed: number[] = [];
  for (const x of candidates) {
    if (x === id) continue;
    const wasVisible = sent.visible === null || sent.visible.has(x);
    const h = changes.peer(x);
    if (!h || !snap.peer(x) || (visible !== null && !visible.has(x))) {
      // it may be in the node's map: named for removal (a node that does not hold it ignores that)
      if (wasVisible) removed.push(x);
      continue;
    }
    const held = wasVisible && h.addedSeq <= sent.at;
    if (!held) peers.push(h.json);
    else if (h.curSeq <= sent.at) continue;
    else if (h.prev && h.prevSeq <= sent.at) {
      const patch = changes.patchJson(x);
      if (patch) patches.push(patch);
    } else peers.push(h.json);
  }
  const entries = peers.length + patches.length + removed.length;
  if (entries > DELTA_MIN_FULL_MAP_ENTRIES && entries > snap.shownCount(id) / 2) return whole();
  const parts: string[] = [];
  if (since.seen.has(id)) parts.push(`"self":${snap.selfJson(self)}`);
  if (peers.length) parts.push(`"peers":[${peers.join(',')}]`);
  if (patches.length) parts.push(`"patches":[${patches.join(',')}]`);
  if (removed.length) parts.push(`"removed":[${removed.join(',')}]`);
  if (since.relays || since.dns) {
    const shared = snap.sectionJson();
    if (since.relays) parts.push(`"relays":${shared.relays}`);
    if (since.dns) parts.push(`"dns":${shared.dns}`);
  }
  let { filter, devices } = sent;
  if (recomputed) {
    const now = snap.engine ? (snap.engine.filterOf(id) ?? NO_RULES) : null;
    const part = filterPart(filter, now, opts.filterPatches === true);
    if (part) parts.push(part);
    filter = now;
  }
  if (recomputed || since.devices) {
    const json = snap.devicesJsonFor(id);
    const d = digest(json);
    if (d !== devices) parts.push(`"devices":${json}`);
    devices = d;
  }
  if (parts.length === 0) return { line: null, full: false, sent: { ...sent, at: snap.seq, visible, filter, devices } };
  const line = `{"type":"delta","delta":{"seq":${snap.seq},"base":${sent.base},${parts.join(',')}}}\n`;
  return { line, full: false, sent: { base: snap.seq, at: snap.seq, visible, filter, devices } };
}
