// The connection table of the access-control filter (acl-filter.ts): the flows
// this node opened and the flows a rule let in, keyed by protocol, local and
// remote address and port, each with an expiry. Fixed capacity, allocated once:
// typed arrays hold the slots, a chained hash (seeded, so a peer cannot aim its
// ports at one chain) finds them and a doubly linked list orders them by last
// use, so a full table evicts the flow idle the longest.
//
// Nothing here allocates per packet. A key is numbers only: the addresses are
// read from the packet as 32-bit words (one each for IPv4, four for IPv6) into
// fields of the table (`load`), hashed once, and compared word by word with the
// slots; a miss leaves the key loaded, so the insert that follows reuses it and
// its hash. Each slot keeps its bucket, so removing it walks one chain without
// hashing again.
import { randomInt } from 'node:crypto';

/**
 * The most flows held at once. 65,536 slots cost about 4.7 MB (32 key bytes plus 40 bytes of state and links each, and two buckets)
 * and cover far more concurrent connections than one node of a mesh keeps; past that the oldest idle flow goes.
 */
export const MAX_FLOWS = 65_536;

/** Who opened a flow. A revoked flow was let in by a rule that a new policy dropped: its packets stay refused until it expires. */
export const FlowOrigin = { Out: 1, In: 2, Revoked: 3 } as const;
export type FlowOrigin = (typeof FlowOrigin)[keyof typeof FlowOrigin];

/** `kind` marks a fragment record (a datagram's IP identification, not a port pair) apart from a flow of the same protocol. */
export const FRAGMENT_KIND = 0x100;
const V6_KIND = 0x200;
/** per slot: the local address in words 0–3, the remote one in words 4–7 (IPv4: words 0 and 4, the others 0) */
const KEY_WORDS = 8;

/** The big-endian 32-bit word at `o` of `b`, as a signed int (read byte by byte: no Buffer helper on the packet path). */
function word(b: Buffer, o: number): number {
  return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}

/** One 32-bit step of MurmurHash3: mixes `k` into `h`. */
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

export class FlowTable {
  readonly capacity: number;
  /** per slot: KEY_WORDS words of addresses */
  private readonly keys: Int32Array;
  /** per slot: protocol | FRAGMENT_KIND | V6_KIND */
  readonly kind: Uint16Array;
  /** per slot: local port << 16 | remote port (ICMP echo: identifier << 16; fragment: identification) */
  readonly ports: Uint32Array;
  readonly origin: Uint8Array;
  /** per slot: flag bits the filter keeps (TCP state) */
  readonly flags: Uint8Array;
  readonly expires: Float64Array;
  /** per slot: its bucket */
  private readonly bucketOf: Int32Array;
  private readonly chain: Int32Array;
  private readonly buckets: Int32Array;
  private readonly mask: number;
  private readonly newer: Int32Array;
  private readonly older: Int32Array;
  private readonly seed = randomInt(0, 2 ** 32 - 1) | 0;
  private newest = -1;
  private oldest = -1;
  private freeHead = 0;
  // the key loaded by load(), and its bucket
  private k0 = 0;
  private k1 = 0;
  private k2 = 0;
  private k3 = 0;
  private k4 = 0;
  private k5 = 0;
  private k6 = 0;
  private k7 = 0;
  private kKind = 0;
  private kPorts = 0;
  private kBucket = 0;
  /**
   * The time lookups and inserts are judged at, set by the filter. A field, not an argument: a fractional number passed
   * to a call that is not inlined is boxed, 16 bytes of garbage per packet.
   */
  now = 0;
  size = 0;
  /** flows dropped to make room, live ones only */
  evicted = 0;

  constructor(capacity = MAX_FLOWS) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`flow table capacity must be a positive integer, not ${capacity}`);
    this.capacity = capacity;
    this.keys = new Int32Array(capacity * KEY_WORDS);
    this.kind = new Uint16Array(capacity);
    this.ports = new Uint32Array(capacity);
    this.origin = new Uint8Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.expires = new Float64Array(capacity);
    this.bucketOf = new Int32Array(capacity);
    this.chain = new Int32Array(capacity);
    this.newer = new Int32Array(capacity).fill(-1);
    this.older = new Int32Array(capacity).fill(-1);
    // free slots are linked through `chain`
    for (let i = 0; i < capacity; i++) this.chain[i] = i + 1 < capacity ? i + 1 : -1;
    let n = 1;
    while (n < capacity * 2) n *= 2;
    this.buckets = new Int32Array(n).fill(-1);
    this.mask = n - 1;
  }

  /**
   * Makes (local address at `localOff`, remote address at `remoteOff`, both `alen` bytes of `b`; protocol or kind;
   * local and remote port, 16 bits each) the key that lookup() and insertLoaded() work on.
   */
  load(b: Buffer, localOff: number, remoteOff: number, alen: number, proto: number, localPort: number, remotePort: number): void {
    let h = this.seed;
    const ports = (localPort << 16) | remotePort;
    this.k0 = word(b, localOff);
    this.k4 = word(b, remoteOff);
    if (alen === 16) {
      this.k1 = word(b, localOff + 4);
      this.k2 = word(b, localOff + 8);
      this.k3 = word(b, localOff + 12);
      this.k5 = word(b, remoteOff + 4);
      this.k6 = word(b, remoteOff + 8);
      this.k7 = word(b, remoteOff + 12);
      this.kKind = proto | V6_KIND;
      h = mix(mix(mix(mix(mix(mix(h, this.k1), this.k2), this.k3), this.k5), this.k6), this.k7);
    } else {
      this.k1 = this.k2 = this.k3 = this.k5 = this.k6 = this.k7 = 0;
      this.kKind = proto;
    }
    this.kPorts = ports >>> 0;
    h = mix(mix(mix(mix(h, this.k0), this.k4), ports), this.kKind);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    this.kBucket = (h ^ (h >>> 16)) & this.mask;
  }

  /** The live slot of the loaded key, or -1. An expired one found on the way is freed. */
  lookup(): number {
    const keys = this.keys;
    const kind = this.kKind;
    const ports = this.kPorts;
    const k0 = this.k0;
    const k4 = this.k4;
    for (let s = this.buckets[this.kBucket]!; s >= 0; s = this.chain[s]!) {
      const base = s * KEY_WORDS;
      if (this.ports[s] !== ports || keys[base] !== k0 || keys[base + 4] !== k4 || this.kind[s] !== kind) continue;
      if (
        kind & V6_KIND &&
        (keys[base + 1] !== this.k1 ||
          keys[base + 2] !== this.k2 ||
          keys[base + 3] !== this.k3 ||
          keys[base + 5] !== this.k5 ||
          keys[base + 6] !== this.k6 ||
          keys[base + 7] !== this.k7)
      )
        continue;
      if (this.expires[s]! <= this.now) {
        this.remove(s);
        return -1;
      }
      return s;
    }
    return -1;
  }

  /** load() then lookup(). */
  find(b: Buffer, localOff: number, remoteOff: number, alen: number, proto: number, localPort: number, remotePort: number): number {
    this.load(b, localOff, remoteOff, alen, proto, localPort, remotePort);
    return this.lookup();
  }

  /**
   * A new slot for the loaded key (not present: lookup() first) that lives `lifeMs`, taking the oldest flow's slot when
   * the table is full.
   */
  insertLoaded(origin: FlowOrigin, lifeMs: number): number {
    if (this.oldest >= 0 && this.expires[this.oldest]! <= this.now) this.remove(this.oldest);
    if (this.freeHead < 0) {
      this.remove(this.oldest);
      this.evicted++;
    }
    const s = this.freeHead;
    this.freeHead = this.chain[s]!;
    const base = s * KEY_WORDS;
    const keys = this.keys;
    keys[base] = this.k0;
    keys[base + 1] = this.k1;
    keys[base + 2] = this.k2;
    keys[base + 3] = this.k3;
    keys[base + 4] = this.k4;
    keys[base + 5] = this.k5;
    keys[base + 6] = this.k6;
    keys[base + 7] = this.k7;
    this.kind[s] = this.kKind;
    this.ports[s] = this.kPorts;
    this.origin[s] = origin;
    this.flags[s] = 0;
    this.expires[s] = this.now + lifeMs;
    const bucket = this.kBucket;
    this.bucketOf[s] = bucket;
    this.chain[s] = this.buckets[bucket]!;
    this.buckets[bucket] = s;
    this.linkNewest(s);
    this.size++;
    return s;
  }

  /** Marks a slot just used: it moves to the newest end and lives `lifeMs` from now. */
  touch(s: number, lifeMs: number): void {
    this.expires[s] = this.now + lifeMs;
    if (this.newest === s) return;
    this.unlink(s);
    this.linkNewest(s);
  }

  remove(s: number): void {
    const bucket = this.bucketOf[s]!;
    let p = -1;
    for (let c = this.buckets[bucket]!; c >= 0 && c !== s; c = this.chain[c]!) p = c;
    if (p < 0) this.buckets[bucket] = this.chain[s]!;
    else this.chain[p] = this.chain[s]!;
    this.unlink(s);
    this.origin[s] = 0;
    this.chain[s] = this.freeHead;
    this.freeHead = s;
    this.size--;
  }

  /** Empties the table in place (the slots' memory is kept): O(slots in use). */
  clear(): void {
    this.forEach((s) => this.remove(s));
  }

  /** Calls `fn` on every slot in use (expired ones included), oldest first; `fn` may remove the slot it is given. */
  forEach(fn: (slot: number) => void): void {
    for (let s = this.oldest; s >= 0; ) {
      const next = this.newer[s]!;
      fn(s);
      s = next;
    }
  }

  /** The address length of a slot's key, 4 or 16. */
  addressLength(s: number): 4 | 16 {
    return this.kind[s]! & V6_KIND ? 16 : 4;
  }

  /** Writes a slot's local address at `out[0]` and its remote address at `out[16]` (addressLength(s) bytes each). */
  addresses(s: number, out: Buffer): void {
    const base = s * KEY_WORDS;
    for (let w = 0; w < KEY_WORDS; w++) {
      const v = this.keys[base + w]!;
      // words 0-3 are the local address, 4-7 the remote one at out[16]
      const o = w * 4;
      out[o] = v >>> 24;
      out[o + 1] = (v >>> 16) & 0xff;
      out[o + 2] = (v >>> 8) & 0xff;
      out[o + 3] = v & 0xff;
    }
  }

  private linkNewest(s: number): void {
    this.older[s] = this.newest;
    this.newer[s] = -1;
    if (this.newest >= 0) this.newer[this.newest] = s;
    this.newest = s;
    if (this.oldest < 0) this.oldest = s;
  }

  private unlink(s: number): void {
    const o = this.older[s]!;
    const n = this.newer[s]!;
    if (o >= 0) this.newer[o] = n;
    else this.oldest = n;
    if (n >= 0) this.older[n] = o;
    else this.newest = o;
    this.older[s] = -1;
    this.newer[s] = -1;
  }
}
