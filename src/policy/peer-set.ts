// A node's set of peers that is never changed once made, and that a one-id
// change copies in O(edits), not O(peers). The policy engine hands these sets
// out (control keeps each stream's as what its node was last shown) and makes
// a new one for every peer of a node that joins or leaves: with a plain Set
// that was a copy of every peer's whole set (1,178 peers of ~1,178 each at
// 5,000 nodes: ~50 MB per join, all of it long-lived enough to be promoted to
// V8's old space and then garbage there). Here a new set shares the old one's
// storage and carries the few ids added or removed since; once those edits
// outnumber the square root of the shared part (the copy that keeps the sum of
// both costs least) it is made whole again.
/** Edits a set carries before it is made whole again, at the least (small sets are cheap to copy). */
export const PEER_SET_MIN_EDITS = 8;

const NONE: ReadonlySet<number> = new Set<number>();

export class PeerSet implements ReadonlySet<number> {
  /** ids of plain Set storage this process copied into new sets (for tests and the bench) */
  static copiedIds = 0;

  private constructor(
    /** shared with the sets this one was made from; never changed */
    private readonly base: ReadonlySet<number>,
    /** ids not in `base` that are in this set */
    private readonly added: ReadonlySet<number>,
    /** ids in `base` that are not in this set */
    private readonly removed: ReadonlySet<number>,
    readonly size: number,
  ) {}

  /** `ids` as a PeerSet; the caller hands the Set over and must not change it after. */
  static of(ids: Set<number>): PeerSet {
    return new PeerSet(ids, NONE, NONE, ids.size);
  }

  has(id: number): boolean {
    return this.added.has(id) || (this.base.has(id) && !this.removed.has(id));
  }

  /** This set with `id` in it (this one when it already is). */
  with(id: number): PeerSet {
    if (this.has(id)) return this;
    if (this.removed.has(id)) return this.edited(this.added, without(this.removed, id), this.size + 1);
    return this.edited(withId(this.added, id), this.removed, this.size + 1);
  }

  /** This set without `id` (this one when it is not in it). */
  without(id: number): PeerSet {
    if (!this.has(id)) return this;
    if (this.added.has(id)) return this.edited(without(this.added, id), this.removed, this.size - 1);
    return this.edited(this.added, withId(this.removed, id), this.size - 1);
  }

  /** Made from the same whole set as `other`: they can differ only in their edits. */
  sharesStorageWith(other: PeerSet): boolean {
    return this.base === other.base;
  }

  /** The ids this set adds to or removes from the storage it shares. */
  *editedIds(): Generator<number> {
    yield* this.added;
    yield* this.removed;
  }

  private edited(added: ReadonlySet<number>, removed: ReadonlySet<number>, size: number): PeerSet {
    const next = new PeerSet(this.base, added, removed, size);
    if (added.size + removed.size <= Math.max(PEER_SET_MIN_EDITS, Math.sqrt(this.base.size))) return next;
    PeerSet.copiedIds += size;
    return PeerSet.of(new Set(next));
  }

  [Symbol.iterator](): SetIterator<number> {
    // most sets carry no edits (made whole, or never changed): the shared Set's own iterator, without a generator's cost per id
    if (this.added.size === 0 && this.removed.size === 0) return this.base[Symbol.iterator]();
    return this.edits();
  }

  private *edits(): SetIterator<number> {
    for (const id of this.base) if (!this.removed.has(id)) yield id;
    yield* this.added;
  }

  keys(): SetIterator<number> {
    return this[Symbol.iterator]();
  }

  values(): SetIterator<number> {
    return this[Symbol.iterator]();
  }

  *entries(): SetIterator<[number, number]> {
    for (const id of this) yield [id, id];
  }

  forEach(fn: (value: number, key: number, set: ReadonlySet<number>) => void, thisArg?: unknown): void {
    for (const id of this) fn.call(thisArg, id, id, this);
  }
}

function withId(s: ReadonlySet<number>, id: number): Set<number> {
  PeerSet.copiedIds += s.size;
  const out = new Set(s);
  out.add(id);
  return out;
}

function without(s: ReadonlySet<number>, id: number): Set<number> {
  PeerSet.copiedIds += s.size;
  const out = new Set(s);
  out.delete(id);
  return out;
}

/**
 * The ids in exactly one of `a` and `b`. Two PeerSets made from the same set
 * differ only where their edits are, so that is all that is read; any other
 * pair is compared whole.
 */
export function changedPeers(a: ReadonlySet<number>, b: ReadonlySet<number>): number[] {
  const out: number[] = [];
  if (a instanceof PeerSet && b instanceof PeerSet && a.sharesStorageWith(b)) {
    const seen = new Set<number>();
    for (const x of a.editedIds()) if (!seen.has(x) && (seen.add(x), a.has(x) !== b.has(x))) out.push(x);
    for (const x of b.editedIds()) if (!seen.has(x) && (seen.add(x), a.has(x) !== b.has(x))) out.push(x);
    return out;
  }
  for (const x of a) if (!b.has(x)) out.push(x);
  for (const x of b) if (!a.has(x)) out.push(x);
  return out;
}
