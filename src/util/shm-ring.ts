// A single-producer, single-consumer ring of records in shared memory, from a
// reader thread to the event loop. It replaces postMessage for packets:
// waking the event loop through Atomics.notify/waitAsync takes ~0.03 ms where
// a MessagePort hand-over takes ~0.12 ms (docs/performance.md, "Who reads"), and
// nothing is allocated or cloned per batch on the producer side.
//
// Layout: `ctl` holds the published head and tail byte counters (free-running
// 32-bit) and a stop flag, plus slots the user may use for counters; `data`
// holds records of an 8-byte header (length, meta) and a body padded to 8. A
// record never wraps: a length of -1 tells the consumer to skip to the start.

const HEAD = 0;
const TAIL = 1;
const STOP = 2;
/** the first ctl slot free for the user's own counters */
export const RING_USER_SLOT = 4;
const CTL_SLOTS = 16;
const HEADER = 8;
const WRAP = -1;
/** how long a producer facing a full ring sleeps before it looks at the stop flag again */
const FULL_WAIT_MS = 20;

export interface RingBuffers {
  ctl: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

/** `capacity` bytes of records; a power of two so counters wrap cleanly. */
export function createRing(capacity: number): RingBuffers {
  if (capacity < 64 || (capacity & (capacity - 1)) !== 0) throw new Error(`ring capacity ${capacity} is not a power of two ≥ 64`);
  return { ctl: new SharedArrayBuffer(4 * CTL_SLOTS), data: new SharedArrayBuffer(capacity) };
}

const pad = (n: number): number => (n + 7) & ~7;

export class RingProducer {
  readonly data: Uint8Array;
  readonly ctl: Int32Array;
  private readonly words: Int32Array;
  private readonly mask: number;
  private head = 0;
  private published = 0;

  constructor(bufs: RingBuffers) {
    this.data = new Uint8Array(bufs.data);
    this.words = new Int32Array(bufs.data);
    this.ctl = new Int32Array(bufs.ctl);
    this.mask = bufs.data.byteLength - 1;
    this.head = this.published = Atomics.load(this.ctl, HEAD) >>> 0;
  }

  get stopped(): boolean {
    return Atomics.load(this.ctl, STOP) !== 0;
  }

  /**
   * Room for one record with a body of `len` bytes: returns the offset of the
   * body in `data`, to be filled before `commit()`, or -1 once stopped. Blocks
   * while the ring is full (the reader then leaves packets in the kernel's queue).
   */
  reserve(len: number, meta = 0): number {
    const need = HEADER + pad(len);
    const cap = this.mask + 1;
    if (need > cap || this.stopped) return -1;
    for (;;) {
      const tail = Atomics.load(this.ctl, TAIL);
      const free = cap - ((this.head - (tail >>> 0)) >>> 0);
      const pos = this.head & this.mask;
      const toEnd = cap - pos;
      if (toEnd < need) {
        if (free >= toEnd) {
          this.words[pos >> 2] = WRAP;
          this.head = (this.head + toEnd) >>> 0;
          continue;
        }
      } else if (free >= need) {
        this.words[pos >> 2] = len;
        this.words[(pos >> 2) + 1] = meta;
        this.head = (this.head + need) >>> 0;
        return pos + HEADER;
      }
      // full: let the consumer see what is there, then sleep until it frees room
      this.commit();
      if (this.stopped) return -1;
      Atomics.wait(this.ctl, TAIL, tail, FULL_WAIT_MS);
    }
  }

  /** Publishes every reserved record and wakes the consumer. */
  commit(): void {
    if (this.head === this.published) return;
    this.published = this.head;
    Atomics.store(this.ctl, HEAD, this.head | 0);
    Atomics.notify(this.ctl, HEAD);
  }
}

type WaitAsync = (a: Int32Array, i: number, v: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * Records visited where they lie in the ring (`RingConsumer.inPlace`): `record` gets the ring's own memory and the
 * body's offset in it, valid until `end` returns; the room is freed after that, so the producer cannot overwrite a
 * record while it is visited. A visitor keeps nothing it was given past `end`: it copies what it keeps. A batch ends
 * at the first record past a quarter of the ring, so the producer keeps room to fill while a batch is handled.
 */
export interface InPlaceVisitor {
  record(data: Buffer, offset: number, length: number, meta: number): void;
  /** after the last record of a batch (also when a record threw) */
  end(): void;
}

/**
 * The event loop's end. By default each wake-up copies the published records out
 * of the ring at once (one allocation per batch, so what the visitor keeps can
 * never be overwritten) and frees their room before visiting them. In place
 * (`RingConsumer.inPlace`) nothing is copied or allocated: the records are
 * visited in the ring and their room freed once the batch is done.
 */
export class RingConsumer {
  private readonly data: Uint8Array;
  private readonly words: Int32Array;
  private readonly ctl: Int32Array;
  private readonly mask: number;
  private tail = 0;
  private running = false;
  /** the ring's memory as a Buffer, for in-place visits */
  private readonly ringBytes: Buffer;
  private visitor: InPlaceVisitor | null = null;
  batches = 0;

  constructor(
    bufs: RingBuffers,
    /** one batch: a private copy and, per record, its body offset/length/meta in it */
    private readonly onBatch: (bytes: Buffer, offsets: number[], lengths: number[], metas: number[]) => void,
  ) {
    this.ringBytes = Buffer.from(bufs.data);
    this.data = new Uint8Array(bufs.data);
    this.words = new Int32Array(bufs.data);
    this.ctl = new Int32Array(bufs.ctl);
    this.mask = bufs.data.byteLength - 1;
    this.tail = Atomics.load(this.ctl, TAIL) >>> 0;
  }

  /** A consumer that visits each record in the ring itself, with no copy and no allocation per batch. */
  static inPlace(bufs: RingBuffers, visitor: InPlaceVisitor): RingConsumer {
    const c = new RingConsumer(bufs, () => {});
    c.visitor = visitor;
    return c;
  }

  /**
   * One visitor for either way: in place, or each batch copied out first and its records visited in the copy (which
   * the visitor may keep). The copy is the default (MESHCTL_RING_IN_PLACE, docs/performance.md).
   */
  static visiting(bufs: RingBuffers, visitor: InPlaceVisitor, inPlace: boolean): RingConsumer {
    if (inPlace) return RingConsumer.inPlace(bufs, visitor);
    return new RingConsumer(bufs, (bytes, offsets, lengths, metas) => {
      try {
        for (let i = 0; i < offsets.length; i++) visitor.record(bytes, offsets[i]!, lengths[i]!, metas[i]!);
      } finally {
        visitor.end();
      }
    });
  }

  /** A user counter slot (RING_USER_SLOT and up), as the producer left it. */
  counter(slot: number): number {
    return Atomics.load(this.ctl, slot);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wait();
  }

  /** Stops consuming and tells the producer to stop. */
  stop(): void {
    this.running = false;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.notify(this.ctl, HEAD);
    Atomics.notify(this.ctl, TAIL);
  }

  private readonly wait = (): void => {
    if (!this.running) return;
    const head = Atomics.load(this.ctl, HEAD);
    if (head >>> 0 !== this.tail) {
      this.drain(head >>> 0);
      // more may have come meanwhile: look again after other events had their turn
      setImmediate(this.wait);
      return;
    }
    const r = waitAsync(this.ctl, HEAD, head);
    if (r.async) void (r.value as Promise<string>).then(this.wait);
    else setImmediate(this.wait);
  };

  private drain(head: number): void {
    if (this.visitor !== null) return this.drainInPlace(head, this.visitor);
    const cap = this.mask + 1;
    const used = (head - this.tail) >>> 0;
    const copy = Buffer.allocUnsafe(used);
    const start = this.tail & this.mask;
    const first = Math.min(used, cap - start);
    copy.set(this.data.subarray(start, start + first), 0);
    if (first < used) copy.set(this.data.subarray(0, used - first), first);
    // the headers are read from the ring, the bodies from the copy
    const offsets: number[] = [];
    const lengths: number[] = [];
    const metas: number[] = [];
    let at = 0;
    while (at < used) {
      const pos = (this.tail + at) & this.mask;
      const len = this.words[pos >> 2]!;
      if (len === WRAP) {
        at += cap - pos;
        continue;
      }
      offsets.push(at + HEADER);
      lengths.push(len);
      metas.push(this.words[(pos >> 2) + 1]!);
      at += HEADER + pad(len);
    }
    this.tail = head;
    Atomics.store(this.ctl, TAIL, head | 0);
    Atomics.notify(this.ctl, TAIL);
    this.batches++;
    if (offsets.length > 0) this.onBatch(copy, offsets, lengths, metas);
  }

  private drainInPlace(head: number, v: InPlaceVisitor): void {
    const cap = this.mask + 1;
    const words = this.words;
    const bytes = this.ringBytes;
    // a batch ends at the first record past a quarter of the ring: the producer keeps room to fill while it is handled
    const quarter = cap >>> 2;
    const start = this.tail;
    let at = start;
    let finished = false;
    this.batches++;
    try {
      while (at !== head && (at - start) >>> 0 < quarter) {
        const pos = at & this.mask;
        const len = words[pos >> 2]!;
        if (len === WRAP) {
          at = (at + cap - pos) >>> 0;
          continue;
        }
        v.record(bytes, pos + HEADER, len, words[(pos >> 2) + 1]!);
        at = (at + HEADER + pad(len)) >>> 0;
      }
      finished = true;
    } finally {
      try {
        v.end();
      } finally {
        // the room is freed only now: nothing the visitor was given can be overwritten before end() returned. A visitor
        // that threw frees the whole batch, as the copying consumer would have lost it.
        if (!finished) at = head;
        this.tail = at >>> 0;
        Atomics.store(this.ctl, TAIL, at | 0);
        Atomics.notify(this.ctl, TAIL);
      }
    }
  }
}
