// Cryptokey routing (whitepaper §2): longest-prefix match from an address to
// the peer that owns it, for IPv4 and IPv6. A binary trie walked bit by bit
// over the raw address bytes: lookup() is on the per-packet path and does no
// string work and no allocation.
import { bytesToIp, ipToBytes } from './ippacket.js';

interface Node<T> {
  zero: Node<T> | null;
  one: Node<T> | null;
  value: T | undefined;
}

const newNode = <T>(): Node<T> => ({ zero: null, one: null, value: undefined });

export interface AllowedIpEntry {
  address: string;
  bits: number;
  family: 4 | 6;
}

export class AllowedIps<T> {
  private v4: Node<T> = newNode();
  private v6: Node<T> = newNode();

  /** A prefix belongs to one peer: inserting it again moves it (as wg does). Host bits are masked off. */
  insert(address: string, bits: number, value: T): void {
    const b = ipToBytes(address);
    const max = b.length * 8;
    if (!Number.isInteger(bits) || bits < 0 || bits > max) throw new RangeError(`prefix length ${bits} out of range for ${address}`);
    let n = b.length === 4 ? this.v4 : this.v6;
    for (let i = 0; i < bits; i++) {
      const one = (b[i >> 3]! >> (7 - (i & 7))) & 1;
      const next = one ? n.one : n.zero;
      if (next) n = next;
      else {
        const c = newNode<T>();
        if (one) n.one = c;
        else n.zero = c;
        n = c;
      }
    }
    n.value = value;
  }

  lookup(addr: Buffer): T | undefined {
    return this.lookupAt(addr, 0, addr.length);
  }

  /** The address of `len` bytes (4 or 16) at `off` in `b`, e.g. inside a packet. */
  lookupAt(b: Buffer, off: number, len: number): T | undefined {
    let n: Node<T> | null = len === 4 ? this.v4 : len === 16 ? this.v6 : null;
    if (off < 0 || off + len > b.length) return undefined;
    let best: T | undefined;
    const bits = len * 8;
    for (let i = 0; n; i++) {
      if (n.value !== undefined) best = n.value;
      if (i === bits) break;
      n = (b[off + (i >> 3)]! >> (7 - (i & 7))) & 1 ? n.one : n.zero;
    }
    return best;
  }

  lookupText(addr: string): T | undefined {
    return this.lookup(ipToBytes(addr));
  }

  remove(address: string, bits: number, value: T): boolean {
    const b = ipToBytes(address);
    let n: Node<T> | null = b.length === 4 ? this.v4 : this.v6;
    for (let i = 0; i < bits && n; i++) n = (b[i >> 3]! >> (7 - (i & 7))) & 1 ? n.one : n.zero;
    if (!n || n.value !== value) return false;
    n.value = undefined;
    return true;
  }

  removeByValue(value: T): void {
    const walk = (n: Node<T> | null): void => {
      if (!n) return;
      if (n.value === value) n.value = undefined;
      walk(n.zero);
      walk(n.one);
    };
    walk(this.v4);
    walk(this.v6);
  }

  entriesFor(value: T): AllowedIpEntry[] {
    const out: AllowedIpEntry[] = [];
    const walk = (n: Node<T> | null, prefix: Buffer, depth: number, family: 4 | 6): void => {
      if (!n) return;
      if (n.value === value) out.push({ address: bytesToIp(prefix), bits: depth, family });
      if (n.zero) walk(n.zero, prefix, depth + 1, family);
      if (n.one) {
        const p = Buffer.from(prefix);
        p[depth >> 3]! |= 1 << (7 - (depth & 7));
        walk(n.one, p, depth + 1, family);
      }
    };
    walk(this.v4, Buffer.alloc(4), 0, 4);
    walk(this.v6, Buffer.alloc(16), 0, 6);
    return out;
  }

  clear(): void {
    this.v4 = newNode();
    this.v6 = newNode();
  }
}
