// A Linux TUN device (IFF_TUN | IFF_NO_PI) created with ioctl(TUNSETIFF)
// through koffi. A quiet tunnel is read by the event loop through libuv
// (main-reader.ts), a busy one by a reader thread whose blocking reads never
// touch the event loop (util/reader-mode.ts decides); writes are synchronous
// non-blocking write()s on the caller's thread, which the kernel completes at
// once for TUN. With offloads
// (IFF_VNET_HDR + TSO, the default) the packets written in one event-loop turn
// are coalesced first (gro.ts) and the reader splits TCP super-packets.
import { closeSync, constants, openSync, writeSync, writevSync } from '../util/cjs.js';
import type { Worker } from 'node:worker_threads';
import { TunError } from './errors.js';
import { mergeScratch, writeMerged } from './gro.js';
import { bindLibc, IFF_NO_PI, IFNAMSIZ, ifreq, IFF_TUN, IFF_VNET_HDR, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUNSETIFF, TUNSETOFFLOAD } from './libc.js';
import { setMtu } from './netconf.js';
import { ringInPlace, tunOffloadWanted } from '../util/knobs.js';
import { startMainTunReader, type MainTunReader } from './main-reader.js';
import { VNET_HDR_LEN, vnetPackets } from './offload.js';
import { HANDBACK_META, MainReading, MODE_SLOT, MODE_THREAD, readerPolicy, spawnReaderThread } from '../util/reader-mode.js';
import { createRing, RingConsumer } from '../util/shm-ring.js';
import { READER_DROPPED, READER_GSO_READS, READER_SEGMENTS } from './reader-slots.js';

export interface TunOptions {
  name: string;
  mtu?: number;
  /** packets per hand-over from the reader thread */
  batchPackets?: number;
  /** TSO/GRO through IFF_VNET_HDR; default on unless MESHCTL_TUN_OFFLOAD=0 */
  offload?: boolean;
  /** where fallbacks are reported (event-loop reads or a reader thread unavailable) */
  log?: (msg: string) => void;
}

export interface TunStats {
  rxPackets: number;
  rxBatches: number;
  /** TCP super-packets the kernel handed over, and the segments they made */
  rxGsoReads: number;
  rxSegments: number;
  /** reads that could not be used (bad virtio header, unsplittable) */
  rxDropped: number;
  /** who reads now, and how often the event loop handed reading to the thread (util/reader-mode.ts) */
  reader: 'main' | 'thread';
  /** whether a reader thread exists (started at a burst, retired when idle) */
  readerThread: boolean;
  readerHandovers: number;
  readerThreadStarts: number;
  txPackets: number;
  /** write system calls, and packets that needed none of their own (merged into another) */
  txWrites: number;
  txMerged: number;
  txErrors: number;
}

export interface TunDevice {
  readonly name: string;
  readonly mtu: number;
  /** whether TSO/GRO offloads are in use */
  readonly offload: boolean;
  /** Packets may be views of a buffer reused by the next read: copy what outlives the call. */
  onPackets(handler: (packets: Buffer[]) => void): void;
  /** Writes (or queues a copy of) `packet`: the caller may reuse its memory when this returns. */
  write(packet: Buffer): boolean;
  readonly stats: TunStats;
  close(): Promise<void>;
}

const DEFAULT_MTU = 1420;
const DEFAULT_BATCH_PACKETS = 64;
/** The reader polls with a 100 ms timeout; this is a generous bound on it noticing the stop flag. */
const READER_STOP_TIMEOUT_MS = 1000;
const NAME_RE = /^[^\s/:]{1,15}$/;
const EINVAL = 22;
const MAX_MERGE_REFUSALS = 16;
/**
 * A packet queued for the end of the turn is copied into one of these slots, whose views are made once and kept while
 * packets keep their length (a stream's segments do): no Buffer per packet. 2,048 bytes hold a packet of any MTU up to
 * 2,000; a longer one is written at once, after what is queued.
 */
const TURN_SLOT_BYTES = 2048;
/**
 * Slots per turn, 256 (512 KiB): more than five merged writes of 45 segments. A turn that fills them writes what it
 * has and starts again, so a longer turn costs one more write per 256 packets and the memory stays bounded.
 */
const TURN_SLOTS = 256;

export async function openTun(opts: TunOptions): Promise<TunDevice> {
  if (!NAME_RE.test(opts.name))
    throw new TunError('TUN_BAD_NAME', `"${opts.name}" is not a valid interface name: use 1–15 characters without spaces, '/' or ':'`);
  const mtu = opts.mtu ?? DEFAULT_MTU;
  let fd: number;
  try {
    fd = openSync('/dev/net/tun', constants.O_RDWR | constants.O_NONBLOCK);
  } catch (err) {
    throw new TunError(
      'TUN_OPEN_FAILED',
      `cannot open /dev/net/tun (${(err as NodeJS.ErrnoException).code}): load the tun module and run as root or with CAP_NET_ADMIN`,
    );
  }
  const libc = bindLibc();
  const ifr = ifreq(opts.name);
  let wantOffload = opts.offload ?? tunOffloadWanted();
  const setIff = (): number => {
    ifr.writeUInt16LE(IFF_TUN | IFF_NO_PI | (wantOffload ? IFF_VNET_HDR : 0), IFNAMSIZ);
    return libc.ioctl(fd, TUNSETIFF, ifr) === 0 ? 0 : libc.errno();
  };
  let errno = setIff();
  // a kernel without IFF_VNET_HDR says EINVAL: a plain TUN still works
  if (errno === EINVAL && wantOffload) {
    wantOffload = false;
    errno = setIff();
  }
  if (errno !== 0) {
    closeSync(fd);
    const hint =
      errno === 16
        ? 'the name is in use by another device or process; choose another name or stop that process'
        : errno === 1
          ? 'run as root or with CAP_NET_ADMIN'
          : `errno ${errno}`;
    throw new TunError('TUN_OPEN_FAILED', `cannot create TUN interface ${opts.name}: ${hint}`);
  }
  // without TSO the virtio header still frames every packet: it then only ever says "plain packet"
  const offload = wantOffload && libc.ioctlValue(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) === 0;
  try {
    await setMtu(opts.name, mtu);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return new LinuxTun(opts.name, mtu, fd, opts.batchPackets ?? DEFAULT_BATCH_PACKETS, wantOffload, offload, opts.log ?? (() => {}));
}

const PLAIN_VNET_HDR = Buffer.alloc(VNET_HDR_LEN);
const RESOLVED = Promise.resolve();
/** reader → event loop ring: a few super-packets' worth of segments */
const RING_BYTES = 512 * 1024;

class LinuxTun implements TunDevice {
  private readonly counters = { rxPackets: 0, txPackets: 0, txWrites: 0, txMerged: 0, txErrors: 0 };
  private worker: Worker | null = null;
  private readonly ring = createRing(RING_BYTES);
  private readonly ctl = new Int32Array(this.ring.ctl);
  private consumer: RingConsumer | null = null;
  private mainReader: MainTunReader | null = null;
  private mainReading: MainReading | null = null;
  private closed = false;
  /** this turn's packets in slots [0, queued): written by index, as emptying an array frees its backing store */
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private readonly iov: Buffer[] = [PLAIN_VNET_HDR, PLAIN_VNET_HDR];
  private flushQueued = false;
  /** the queued packets' copies: slot i at i × TURN_SLOT_BYTES, and the last view made of each */
  private readonly slotMem = Buffer.allocUnsafeSlow(TURN_SLOTS * TURN_SLOT_BYTES);
  private readonly slotViews: Buffer[] = Array.from({ length: TURN_SLOTS }, () => PLAIN_VNET_HDR);
  private readonly scratch = mergeScratch();
  private merging = true;
  private mergeRefusals = 0;

  constructor(
    readonly name: string,
    readonly mtu: number,
    private readonly fd: number,
    private readonly batchPackets: number,
    /** every packet on the fd carries a virtio_net_hdr */
    private readonly vnet: boolean,
    readonly offload: boolean,
    private readonly log: (msg: string) => void,
  ) {}

  get stats(): TunStats {
    const c = this.consumer;
    const handovers = this.mainReading?.handovers ?? 0;
    const get = (slot: number): number => c?.counter(slot) ?? 0;
    return {
      ...this.counters,
      rxBatches: c?.batches ?? 0,
      rxGsoReads: get(READER_GSO_READS),
      rxSegments: get(READER_SEGMENTS),
      rxDropped: get(READER_DROPPED),
      reader: get(MODE_SLOT) === MODE_THREAD ? 'thread' : 'main',
      readerThread: this.mainReading?.threadRunning ?? false,
      readerHandovers: handovers,
      readerThreadStarts: this.mainReading?.threadStarts ?? 0,
    };
  }

  onPackets(handler: (packets: Buffer[]) => void): void {
    if (this.consumer || this.closed) return;
    const deliver = (pkts: Buffer[]): void => {
      this.counters.rxPackets += pkts.length;
      handler(pkts);
    };
    // with MESHCTL_RING_IN_PLACE=1 packets are handed on where the thread wrote them, as the event loop's own reads
    // hand on views of their buffer: the handler copies what it keeps; the ring's room is freed once it has returned
    let pkts: Buffer[] = [];
    this.consumer = RingConsumer.visiting(
      this.ring,
      {
        record: (bytes, off, len, meta) => {
          if (meta === HANDBACK_META) {
            // everything the thread read is handled before the event loop reads again
            if (pkts.length) deliver(pkts);
            pkts = [];
            this.mainReading?.handedBack();
            return;
          }
          pkts.push(bytes.subarray(off, off + len));
        },
        end: () => {
          const batch = pkts;
          pkts = [];
          if (batch.length) deliver(batch);
        },
      },
      ringInPlace(),
    );
    let policy = readerPolicy();
    const readMax = this.vnet ? VNET_HDR_LEN + 65535 : this.mtu + 64;
    if (policy !== 'thread') this.mainReader = startMainTunReader(this.fd, readMax, (buf, n) => this.mainRead(buf, n, deliver), this.log);
    if (!this.mainReader) policy = 'thread';
    const data = { fd: this.fd, mtu: this.mtu, batchPackets: this.batchPackets, ring: this.ring, vnet: this.vnet, policy };
    const onExit = (code: number): void => {
      this.worker = null;
      if (!this.closed) this.mainReading?.threadExited(code);
    };
    // '../tun/' (not './'): the same path works from dist/src/tun/ and from the daemon's bundle in dist/src/cli/
    const startThread = (): boolean => (this.worker = spawnReaderThread(new URL('../tun/reader-worker.js', import.meta.url), data, onExit, this.log)) !== null;
    this.mainReading = new MainReading(
      this.ctl,
      policy,
      () => this.mainReader?.pause(),
      () => this.mainReader?.resume(),
      startThread,
    );
    this.consumer.start();
    this.mainReading.begin();
  }

  private mainRead(buf: Buffer, n: number, deliver: (pkts: Buffer[]) => void): void {
    if (n <= 0) return;
    let pkts: Buffer[];
    if (this.vnet) {
      const r = vnetPackets(buf, n);
      const ctl = this.ctl;
      if (!r) {
        Atomics.add(ctl, READER_DROPPED, 1);
        return;
      }
      if (r.gso) {
        Atomics.add(ctl, READER_GSO_READS, 1);
        Atomics.add(ctl, READER_SEGMENTS, r.packets.length);
      }
      pkts = r.packets;
    } else pkts = [buf.subarray(0, n)]; // a view: see vnetPackets
    deliver(pkts);
    this.mainReading?.read(pkts.length);
  }

  /** Without a virtio header the packet goes out at once; with one it waits for the end of this turn, to be merged. */
  write(packet: Buffer): boolean {
    if (this.closed) return false;
    this.counters.txPackets++;
    if (!this.vnet) return this.writePlain(packet);
    const len = packet.length;
    if (this.queued === TURN_SLOTS || len > TURN_SLOT_BYTES) this.flush(); // in order, and the slots are free again
    if (len > TURN_SLOT_BYTES) return this.writeVnet(null, packet);
    const i = this.queued++;
    const at = i * TURN_SLOT_BYTES;
    this.slotMem.set(packet, at);
    let view = this.slotViews[i]!;
    if (view.length !== len) this.slotViews[i] = view = Buffer.from(this.slotMem.buffer, this.slotMem.byteOffset + at, len);
    this.queue[i] = view;
    if (!this.flushQueued) {
      this.flushQueued = true;
      // V8's own microtask queue: Node's queueMicrotask wraps every call in an AsyncResource,
      // ~1 KB of garbage per packet (docs/performance.md, "Per-packet garbage")
      void RESOLVED.then(this.flush);
    }
    return true;
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    const q = this.queue;
    const n = this.queued;
    try {
      if (this.closed) return;
      if (n === 1 || !this.offload || !this.merging) {
        for (let i = 0; i < n; i++) this.writeVnet(null, q[i]!);
        return;
      }
      const r = writeMerged(q, this.writeVnet, this.scratch, n);
      this.counters.txMerged += r.merged;
      // a kernel that keeps refusing merged packets gets plain ones from then on
      this.mergeRefusals += r.refused;
      if (this.mergeRefusals >= MAX_MERGE_REFUSALS) this.merging = false;
    } finally {
      for (let i = 0; i < n; i++) q[i] = PLAIN_VNET_HDR; // hold no packet until the next turn
      this.queued = 0;
    }
  };

  private writePlain(pkt: Buffer): boolean {
    try {
      writeSync(this.fd, pkt);
      this.counters.txWrites++;
      return true;
    } catch {
      this.counters.txErrors++;
      return false;
    }
  }

  private readonly writeVnet = (hdr: Buffer | null, pkt: Buffer): boolean => {
    try {
      const iov = this.iov;
      iov[0] = hdr ?? PLAIN_VNET_HDR;
      iov[1] = pkt;
      writevSync(this.fd, iov);
      iov[1] = PLAIN_VNET_HDR; // hold no packet between writes
      this.counters.txWrites++;
      return true;
    } catch {
      this.counters.txErrors++;
      return false;
    }
  };

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.mainReader?.close();
    this.consumer?.stop();
    if (this.worker) {
      const w = this.worker;
      // hold the loop open until the reader has stopped (it is unref'd while running)
      w.ref();
      await new Promise<void>((r) => {
        const t = setTimeout(() => void w.terminate().then(() => r()), READER_STOP_TIMEOUT_MS);
        w.once('exit', () => (clearTimeout(t), r()));
      });
    }
    closeSync(this.fd);
  }
}
