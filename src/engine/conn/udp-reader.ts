// The event loop's side of the UDP reader thread (udp-reader-worker.ts): libuv
// reads a quiet socket; at a burst it stops and the thread, started then,
// drains the sockets (util/reader-mode.ts); each batch from the ring is turned
// back into datagrams with their source endpoints. MESHCTL_READER_MODE=main
// keeps libuv reading always, e.g. to compare. The thread turns UDP_GRO on
// while it reads and off before it hands back; what libuv still reads merged
// (queued in between) is split here by the segments' headers (gro-split.ts).
// MESHCTL_UDP_GRO=0 never turns it on.
import type dgram from 'node:dgram';
import type { Worker } from 'node:worker_threads';
import type { Endpoint } from './endpoint.js';
import { readIpv6 } from '../../util/ip.js';
import { HANDBACK_META, MainReading, readerPolicy, spawnReaderThread } from '../../util/reader-mode.js';
import { createRing, RingConsumer } from '../../util/shm-ring.js';
import { UDP_READER_WORKER_URL } from '../worker-files.js';
import { ringInPlace, udpGroWanted } from '../../util/knobs.js';
import { SPLIT_DONE, SPLIT_FAILED, splitMerged } from './gro-split.js';
import { UDP_GRO_DATAGRAMS, UDP_GRO_READS, UDP_GRO_SPLIT_FAILURES } from './udp-reader-slots.js';

const NAME_SLOT = 28;
/** a WireGuard transport message's first byte: handed on in place (the device copies it before decrypting) */
const TRANSPORT_TYPE = 4;
const AF_INET = 2;
const AF_INET6 = 10;
const STOP_TIMEOUT_MS = 1000;
/** reader → event loop ring: a few recvmmsg batches of full-size datagrams */
const RING_BYTES = 512 * 1024;

interface UdpHandle {
  fd?: number;
  recvStop?: () => number;
  recvStart?: () => number;
}

/**
 * The libuv handle behind a dgram socket (fd, recvStart/recvStop), which Node
 * keeps under a private symbol; `socket._handle` works too but prints a
 * deprecation warning (DEP0112).
 */
export function udpHandle(s: dgram.Socket): UdpHandle | undefined {
  const sym = Object.getOwnPropertySymbols(s).find((x) => x.description === 'state symbol');
  return sym ? (s as unknown as Record<symbol, { handle?: UdpHandle }>)[sym]?.handle : undefined;
}
const handleOf = udpHandle;

export interface UdpReaderOptions {
  /** the thread hands back below this many datagrams per window (reader-mode.ts QUIET_PACKETS); tests pass Infinity */
  quietPackets?: number;
}

export class UdpReader {
  private readonly v4Names = new Map<number, string>();
  private readonly v6Names = new Map<string, string>();
  private consumer: RingConsumer | null = null;
  private mainReading: MainReading | null = null;
  /** A datagram libuv read (UdpBind's listener calls this after delivering it). */
  countMain(n = 1): void {
    if (!this.stopping) this.mainReading?.read(n);
  }
  truncated = 0;
  /** libuv reads that were merged datagrams, split by their headers, and the datagrams they held */
  mainSplits = 0;
  mainSplitDatagrams = 0;
  /** libuv reads whose header repeated but whose segments did not fit one size: delivered whole, to fail authentication */
  private mainSplitFailures = 0;

  /** reads, on either side, that looked merged but whose segments did not fit one size (delivered whole) */
  get splitFailures(): number {
    return this.mainSplitFailures + (this.consumer?.counter(UDP_GRO_SPLIT_FAILURES) ?? 0);
  }
  /** whether the thread may turn UDP_GRO on (MESHCTL_UDP_GRO) */
  readonly gro: boolean = udpGroWanted();

  private worker: Worker | null = null;
  private stopping = false;

  private constructor(
    private readonly sockets: dgram.Socket[],
    private readonly onDatagram: (buf: Buffer, src: Endpoint) => void,
  ) {}

  /**
   * A datagram libuv read: delivered, split first when it is a merged read
   * (only possible where UDP_GRO was on), and counted for the burst detection.
   */
  deliverMain(buf: Buffer, src: Endpoint): void {
    let n = 1;
    if (this.gro) {
      const r = splitMerged(buf, this.deliverSegment(src));
      if (r === SPLIT_DONE) {
        n = this.segments;
        this.mainSplits++;
        this.mainSplitDatagrams += n;
      } else {
        if (r === SPLIT_FAILED) this.mainSplitFailures++;
        this.onDatagram(buf, src);
      }
    } else this.onDatagram(buf, src);
    this.countMain(n);
  }

  private segments = 0;
  private segmentSrc: Endpoint | null = null;
  private readonly onSegment = (seg: Buffer): void => {
    this.segments++;
    this.onDatagram(seg, this.segmentSrc!);
  };
  private deliverSegment(src: Endpoint): (seg: Buffer) => void {
    this.segments = 0;
    this.segmentSrc = src;
    return this.onSegment;
  }

  /** reads of the thread that brought merged datagrams with their segment size, and the datagrams they held */
  get groReads(): number {
    return this.consumer?.counter(UDP_GRO_READS) ?? 0;
  }

  get groDatagrams(): number {
    return this.consumer?.counter(UDP_GRO_DATAGRAMS) ?? 0;
  }

  get batches(): number {
    return this.consumer?.batches ?? 0;
  }

  /** times the event loop handed reading to the thread */
  get handovers(): number {
    return this.mainReading?.handovers ?? 0;
  }

  get threadStarts(): number {
    return this.mainReading?.threadStarts ?? 0;
  }

  get threadRunning(): boolean {
    return this.mainReading?.threadRunning ?? false;
  }

  /** null where the thread cannot run (not Linux x64/arm64, no libuv handle): libuv keeps reading. */
  static start(
    sockets: dgram.Socket[],
    onDatagram: (buf: Buffer, src: Endpoint) => void,
    log: (m: string) => void,
    opts: UdpReaderOptions = {},
  ): UdpReader | null {
    if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) return null;
    const handles = sockets.map(handleOf);
    if (handles.some((h) => !h?.recvStop || !h.recvStart || (h.fd ?? -1) < 0)) return null;
    const ring = createRing(RING_BYTES);
    const policy = readerPolicy();
    const r = new UdpReader(sockets, onDatagram);
    const onExit = (code: number): void => {
      r.worker = null;
      if (!r.stopping) r.mainReading?.threadExited(code);
    };
    const startThread = (): boolean =>
      (r.worker = spawnReaderThread(
        UDP_READER_WORKER_URL,
        { fds: handles.map((h) => h!.fd), ring, policy, gro: r.gro, quietPackets: opts.quietPackets },
        onExit,
        log,
      )) !== null;
    r.mainReading = new MainReading(
      new Int32Array(ring.ctl),
      policy,
      () => handles.forEach((h) => h!.recvStop!()),
      () => handles.forEach((h) => h!.recvStart!()),
      startThread,
    );
    // in place (MESHCTL_RING_IN_PLACE=1) datagrams are visited where the thread wrote them: a transport message is
    // copied once, by the device, into the memory it decrypts in; anything else (handshakes, disco, STUN) may be kept
    // by its receiver and is copied here. Otherwise the batch was copied out of the ring and its views may be kept.
    const inPlace = ringInPlace();
    r.consumer = RingConsumer.visiting(
      ring,
      {
        record: (bytes, off, len, meta) => {
          if (meta === HANDBACK_META) {
            r.mainReading!.handedBack(); // the datagrams before it are delivered, those after it are none
            return;
          }
          if (meta !== 0) {
            r.truncated++;
            return;
          }
          const src = r.endpoint(bytes, off);
          if (!src) return;
          const view = bytes.subarray(off + NAME_SLOT, off + len);
          onDatagram(!inPlace || view[0] === TRANSPORT_TYPE ? view : Buffer.from(view), src);
        },
        end: () => {},
      },
      inPlace,
    );
    r.consumer.start();
    r.mainReading.begin();
    return r;
  }

  private endpoint(b: Buffer, off: number): Endpoint | null {
    const family = b.readUInt16LE(off);
    const port = b.readUInt16BE(off + 2);
    if (family === AF_INET) {
      const n = b.readUInt32BE(off + 4);
      let a = this.v4Names.get(n);
      if (a === undefined) {
        a = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
        if (this.v4Names.size > 4096) this.v4Names.clear();
        this.v4Names.set(n, a);
      }
      return { address: a, port };
    }
    if (family === AF_INET6) {
      const key = b.toString('hex', off + 8, off + 24);
      let a = this.v6Names.get(key);
      if (a === undefined) {
        a = readIpv6(b, off + 8);
        if (a.startsWith('::ffff:') && a.includes('.')) a = a.slice(7);
        if (this.v6Names.size > 4096) this.v6Names.clear();
        this.v6Names.set(key, a);
      }
      return { address: a, port };
    }
    return null;
  }

  /** Stops the thread (within its 100 ms poll) and gives the sockets back to libuv. */
  async stop(restartLibuv = false): Promise<void> {
    this.stopping = true;
    this.consumer?.stop();
    const w = this.worker;
    if (w) {
      w.ref();
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => void w.terminate().then(() => resolve()), STOP_TIMEOUT_MS);
        w.once('exit', () => (clearTimeout(t), resolve()));
      });
    }
    if (restartLibuv) for (const s of this.sockets) handleOf(s)?.recvStart?.();
  }
}
