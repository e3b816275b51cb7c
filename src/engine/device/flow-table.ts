// The connection table of the access-control filter (acl-filter.ts): the flows
// this node opened and the flows a rule let in, keyed by protocol, local and
// remote address and port, each with an expiry. Fixed capacity, allocated once:
// typed arrays hold the slots, a chained hash (seeded, so a peer cannot aim its
// ports at one chain) finds them and a doubly linked list orders them by last
// use, so a full table evicts the flow idle the longest. Nothing here allocates
// per packet; addresses are compared in place, as offsets into the packet.
import { randomInt } from 'node:crypto';

/**
 * The most flows held at once. 65,536 slots cost about 4.5 MB (32 address bytes plus 36 bytes of state and links
 * each) and cover far more concurrent connections than one node of a mesh keeps; past that the oldest idle flow goes.
 */
export const MAX_FLOWS = 65_536;

/** Who opened a flow. A revoked flow was let in by a rule that a new policy dropped: its packets stay refused until it expires. */
export const FlowOrigin = { Out: 1, In: 2, Revoked: 3 } as const;
export type FlowOrigin = (typeof FlowOrigin)[keyof typeof FlowOrigin];

/** `kind` marks a fragment record (a datagram's IP identification, not a port pair) apart from a flow of the same protocol. */
export const FRAGMENT_KIND = 0x100;
const V6_KIND = 0x200;
const ADDR_BYTES = 32;

export class FlowTable {
  readonly capacity: number;
  /** per slot: local address at +0, remote address at +16 (IPv4 uses the first 4 bytes of each) */
  readonly addrs: Buffer;
  /** per slot: protocol | FRAGMENT_KIND | V6_KIND */
  readonly kind: Uint16Array;
  /** per slot: local port << 16 | remote port (ICMP echo: identifier << 16; fragment: identification) */
  readonly ports: Uint32Array;
  readonly origin: Uint8Array;
  /** per slot: flag bits the filter keeps (TCP state) */
  readonly flags: Uint8Array;
  readonly expires: Float64Array;
  private readonly chain: Int32Array;
  private readonly buckets: Int32Array;
  private readonly mask: number;
  private readonly newer: Int32Array;
  private readonly older: Int32Array;
  private readonly seed = randomInt(0, 2 ** 32 - 1) | 0;
  private newest = -1;
  private oldest = -1;
  private freeHead = 0;
  size = 0;
  /** flows dropped to make room, live ones only */
  evicted = 0;

  constructor(capacity = MAX_FLOWS) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`flow table capacity must be a positive integer, not ${capacity}`);
    this.capacity = capacity;
    this.addrs = Buffer.alloc(capacity * ADDR_BYTES);
    this.kind = new Uint16Array(capacity);
    this.ports = new Uint32Array(capacity);
    this.origin = new Uint8Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.expires = new Float64Array(capacity);
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

  private hash(b: Buffer, localOff: number, remoteOff: number, alen: number, kind: number, ports: number): number {
    let h = this.seed ^ kind;
    for (let i = 0; i < alen; i++) h = Math.imul(h ^ b[localOff + i]!, 0x01000193);
    for (let i = 0; i < alen; i++) h = Math.imul(h ^ b[remoteOff + i]!, 0x01000193);
    h = Math.imul(h ^ ports, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) & this.mask;
  }

  private same(slot: number, b: Buffer, localOff: number, remoteOff: number, alen: number): boolean {
    const base = slot * ADDR_BYTES;
    const a = this.addrs;
    for (let i = 0; i < alen; i++) if (a[base + i] !== b[localOff + i] || a[base + 16 + i] !== b[remoteOff + i]) return false;
    return true;
  }

  /** The live slot of this key, or -1. An expired one found on the way is freed. */
  find(b: Buffer, localOff: number, remoteOff: number, alen: number, proto: number, ports: number, now: number): number {
    const kind = proto | (alen === 16 ? V6_KIND : 0);
    const bucket = this.hash(b, localOff, remoteOff, alen, kind, ports);
    for (let s = this.buckets[bucket]!; s >= 0; s = this.chain[s]!) {
      if (this.kind[s] !== kind || this.ports[s] !== ports || !this.same(s, b, localOff, remoteOff, alen)) continue;
      if (this.expires[s]! <= now) {
        this.remove(s);
        return -1;
      }
      return s;
    }
    return -1;
  }

  /** A new slot for this key (not present: call find first), taking the oldest flow's slot when the table is full. */
  insert(b: Buffer, localOff: number, remoteOff: number, alen: number, proto: number, ports: number, origin: FlowOrigin, expires: number, now: number): number {
    if (this.oldest >= 0 && this.expires[this.oldest]! <= now) this.remove(this.oldest);
    if (this.freeHead < 0) {
      this.remove(this.oldest);
      this.evicted++;
    }
    const s = this.freeHead;
    this.freeHead = this.chain[s]!;
    const kind = proto | (alen === 16 ? V6_KIND : 0);
    const base = s * ADDR_BYTES;
    this.addrs.fill(0, base, base + ADDR_BYTES);
    b.copy(this.addrs, base, localOff, localOff + alen);
    b.copy(this.addrs, base + 16, remoteOff, remoteOff + alen);
    this.kind[s] = kind;
    this.ports[s] = ports;
    this.origin[s] = origin;
    this.flags[s] = 0;
    this.expires[s] = expires;
    const bucket = this.hash(b, localOff, remoteOff, alen, kind, ports);
    this.chain[s] = this.buckets[bucket]!;
    this.buckets[bucket] = s;
    this.linkNewest(s);
    this.size++;
    return s;
  }

  /** Marks a slot just used: it moves to the newest end and lives until `expires`. */
  touch(s: number, expires: number): void {
    this.expires[s] = expires;
    if (this.newest === s) return;
    this.unlink(s);
    this.linkNewest(s);
  }

  remove(s: number): void {
    const base = s * ADDR_BYTES;
    const alen = this.kind[s]! & V6_KIND ? 16 : 4;
    const bucket = this.hash(this.addrs, base, base + 16, alen, this.kind[s]!, this.ports[s]!);
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
