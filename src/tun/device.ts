// A Linux TUN device (IFF_TUN | IFF_NO_PI) created with ioctl(TUNSETIFF)
// through koffi. Reads happen on a worker thread (blocking calls must never
// run on the event loop); writes are synchronous non-blocking write()s on the
// caller's thread, which the kernel completes at once for TUN.
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { TunError } from './errors.js';
import { bindLibc, IFF_NO_PI, IFF_TUN, TUNSETIFF } from './libc.js';
import { setMtu } from './netconf.js';

export interface TunOptions {
  name: string;
  mtu?: number;
  /** packets per hand-over from the reader thread */
  batchPackets?: number;
}

export interface TunStats {
  rxPackets: number;
  txPackets: number;
  txErrors: number;
  rxBatches: number;
}

export interface TunDevice {
  readonly name: string;
  readonly mtu: number;
  onPackets(handler: (packets: Buffer[]) => void): void;
  write(packet: Buffer): boolean;
  readonly stats: TunStats;
  close(): Promise<void>;
}

const DEFAULT_MTU = 1420;
const DEFAULT_BATCH_PACKETS = 64;
const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;
/** The reader polls with a 100 ms timeout; this is a generous bound on it noticing the stop flag. */
const READER_STOP_TIMEOUT_MS = 1000;
const NAME_RE = /^[^\s/:]{1,15}$/;

export async function openTun(opts: TunOptions): Promise<TunDevice> {
  if (!NAME_RE.test(opts.name)) throw new TunError('TUN_BAD_NAME', `"${opts.name}" is not a valid interface name: use 1–15 characters without spaces, '/' or ':'`);
  const mtu = opts.mtu ?? DEFAULT_MTU;
  let fd: number;
  try {
    fd = openSync('/dev/net/tun', constants.O_RDWR | constants.O_NONBLOCK);
  } catch (err) {
    throw new TunError('TUN_OPEN_FAILED', `cannot open /dev/net/tun (${(err as NodeJS.ErrnoException).code}): load the tun module and run as root or with CAP_NET_ADMIN`);
  }
  const libc = bindLibc();
  const ifr = Buffer.alloc(IFREQ_SIZE);
  ifr.write(opts.name, 0, IFNAMSIZ - 1, 'ascii');
  ifr.writeUInt16LE(IFF_TUN | IFF_NO_PI, IFNAMSIZ);
  if (libc.ioctl(fd, TUNSETIFF, ifr) !== 0) {
    const errno = libc.errno();
    closeSync(fd);
    const hint = errno === 16 ? 'the name is in use by another device or process; choose another name or stop that process' : errno === 1 ? 'run as root or with CAP_NET_ADMIN' : `errno ${errno}`;
    throw new TunError('TUN_OPEN_FAILED', `cannot create TUN interface ${opts.name}: ${hint}`);
  }
  try {
    await setMtu(opts.name, mtu);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return new LinuxTun(opts.name, mtu, fd, opts.batchPackets ?? DEFAULT_BATCH_PACKETS);
}

class LinuxTun implements TunDevice {
  readonly stats: TunStats = { rxPackets: 0, txPackets: 0, txErrors: 0, rxBatches: 0 };
  private worker: Worker | null = null;
  private readonly stop = new SharedArrayBuffer(4);
  private closed = false;

  constructor(readonly name: string, readonly mtu: number, private readonly fd: number, private readonly batchPackets: number) {}

  onPackets(handler: (packets: Buffer[]) => void): void {
    if (this.worker || this.closed) return;
    const w = new Worker(new URL('./reader-worker.js', import.meta.url), { workerData: { fd: this.fd, mtu: this.mtu, batchPackets: this.batchPackets, stop: this.stop } });
    w.on('message', (m: { ab: ArrayBuffer; slot: number; lengths: number[] }) => {
      const pkts = m.lengths.map((len, i) => Buffer.from(m.ab, i * m.slot, len));
      this.stats.rxBatches++;
      this.stats.rxPackets += pkts.length;
      handler(pkts);
    });
    w.on('error', () => {});
    w.unref();
    this.worker = w;
  }

  write(packet: Buffer): boolean {
    try {
      writeSync(this.fd, packet);
      this.stats.txPackets++;
      return true;
    } catch {
      this.stats.txErrors++;
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(new Int32Array(this.stop), 0, 1);
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
