// Short peer ids on a relay connection. A relayed packet names its peer by a
// 32-byte key; on a small link those 32 bytes are ~2 % of every data packet
// and ~25 % of every relayed TCP ACK. When both ends agree (ClientInfo and
// ServerInfo carry `shortIds`), the sender of a packet defines a 2-byte id for
// a key once (a PeerId frame) and then sends packets with the id alone. Each
// direction has its own table: the client's ids name destinations, the
// relay's ids name sources. Frames on one connection arrive in order, so a
// definition always precedes its first use; a definition and the packet that
// needs it are written as one buffer, so both are queued or neither is.

/** Ids a table holds; past it, ids are reused round-robin (a redefinition costs one PeerId frame). */
export const SHORT_IDS_MAX = 256;
/** The id on the wire: 2 bytes, big-endian. */
export const SHORT_ID_LEN = 2;

/** The sending side: the id for a key, and whether the peer must first hear the definition. */
export class ShortIdAssigner {
  private readonly ids = new Map<string, number>();
  private readonly keys: (string | undefined)[] = [];
  private next = 0;

  constructor(readonly max = SHORT_IDS_MAX) {}

  idFor(keyHex: string): { id: number; fresh: boolean } {
    const known = this.ids.get(keyHex);
    if (known !== undefined) return { id: known, fresh: false };
    const id = this.next;
    this.next = (this.next + 1) % this.max;
    const old = this.keys[id];
    if (old !== undefined) this.ids.delete(old);
    this.keys[id] = keyHex;
    this.ids.set(keyHex, id);
    return { id, fresh: true };
  }

  /** A definition that was never sent (the queue was full): the id must be defined again before its next use. */
  forget(keyHex: string): void {
    const id = this.ids.get(keyHex);
    if (id === undefined) return;
    this.ids.delete(keyHex);
    this.keys[id] = undefined;
  }
}

/** The receiving side: what the other end defined each id as. */
export class ShortIdTable<T> {
  private readonly byId: (T | undefined)[] = [];

  constructor(readonly max = SHORT_IDS_MAX) {}

  /** false: an id outside the table (the frame is malformed) */
  define(id: number, value: T): boolean {
    if (!Number.isInteger(id) || id < 0 || id >= this.max) return false;
    this.byId[id] = value;
    return true;
  }

  get(id: number): T | undefined {
    return id < this.max ? this.byId[id] : undefined;
  }
}

/** The 2-byte id as the wire carries it. */
export function shortIdBytes(id: number): Buffer {
  const b = Buffer.allocUnsafe(SHORT_ID_LEN);
  b.writeUInt16BE(id, 0);
  return b;
}

/** What a ClientInfo or ServerInfo says about short ids: the table size it takes, or 0 when it says nothing usable. */
export function shortIdsOffered(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? Math.min(v, SHORT_IDS_MAX) : 0;
}
