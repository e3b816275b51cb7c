// Who reads a socket or TUN fd: the event loop (libuv) or the reader thread.
// A hand-over between threads is one more wake-up, 0.03–0.26 ms on this kind
// of machine (docs/performance.md, "Who reads"), so a quiet tunnel is read by the event
// loop itself, one wake-up per packet like wireguard-go, and a busy one by the
// thread, which batches and uses the second core. The event loop hands over
// when it sees a burst; the thread hands back when the rate falls, with a
// marker record in the ring so no packet it read is overtaken. The thread is
// started at a burst, not before, and retired after 15 quiet seconds: an idle
// daemon does not pay the ~8 MB of a worker isolate per reader. 15 s follows
// the daemon's own idle release (10 s, util/idle-memory.ts), so a daemon quiet
// for 20 s holds neither (two readers held past that put 100-peer idle RSS at
// 62-78 MiB instead of ~50). A burst after that starts a
// thread again in ~60 ms, the event loop reading meanwhile.
//
// MESHCTL_READER_MODE=thread|main pins one side (to compare in benchmarks).

import type { Worker } from 'node:worker_threads';
import { cjsRequire } from './cjs.js';
import { readerModeKnob, readerRetireMs } from './knobs.js';
import { trimMallocSoon } from './malloc-trim.js';
import { RING_USER_SLOT } from './shm-ring.js';

/** ctl slot of the ring holding the current reader */
export const MODE_SLOT = RING_USER_SLOT + 8;
export const MODE_MAIN = 0;
export const MODE_THREAD = 1;
/** ctl slot the thread sets to 1 once it runs and can take over */
export const READY_SLOT = RING_USER_SLOT + 9;
/** ctl slot the event loop sets to 1 to retire an idle thread */
export const RETIRE_SLOT = RING_USER_SLOT + 10;
/** a thread that has not read for this long (the event loop reading) is retired */
export const RETIRE_AFTER_MS = 15_000;
/** meta of the record the thread writes when it hands reading back */
export const HANDBACK_META = -1;

/** the event loop hands over beyond this many packets in one window … */
const BURST_PACKETS = 64;
const BURST_WINDOW_MS = 20;
/** … and the thread hands back below this many in its window */
export const QUIET_PACKETS = 32;
export const QUIET_WINDOW_MS = 250;

export type ReaderPolicy = 'auto' | 'thread' | 'main';

/** RETIRE_AFTER_MS, or MESHCTL_READER_RETIRE_MS (tests) */
export function retireAfterMsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  return readerRetireMs(env) ?? RETIRE_AFTER_MS;
}

/** MESHCTL_READER_MODE: the pinned side, else 'auto' */
export function readerPolicy(env: NodeJS.ProcessEnv = process.env): ReaderPolicy {
  return readerModeKnob(env);
}

/** The event loop's side: counts what it reads and hands over on a burst. */
export class MainReading {
  private count = 0;
  private windowStart = 0;
  /** hand-overs to the thread, and threads started, for the counters */
  handovers = 0;
  threadStarts = 0;

  /** whether a reader thread exists now */
  get threadRunning(): boolean {
    return this.started && this.policy !== 'main';
  }

  constructor(
    private readonly ctl: Int32Array,
    private policy: ReaderPolicy,
    /** stop and start libuv reading */
    private readonly pause: () => void,
    private readonly resume: () => void,
    /** starts the reader thread (again after it was retired); false if it cannot run */
    private readonly startThread: () => boolean,
    private readonly retireAfterMs: number = retireAfterMsFromEnv(),
  ) {}

  private started = false;
  private retiring = false;
  private retireTimer: NodeJS.Timeout | null = null;

  /** A 'thread' policy hands over at once (the thread takes its turn when it is up). */
  begin(): void {
    if (this.policy === 'thread' && this.start()) this.handOver();
    else this.resume();
  }

  private start(): boolean {
    if (!this.started) {
      this.started = true;
      if (!this.startThread()) this.policy = 'main';
      else {
        this.threadStarts++;
        this.armRetire(); // a burst that ends before the thread is up leaves it idle
      }
    }
    return this.policy !== 'main';
  }

  private armRetire(): void {
    if (this.policy !== 'auto') return;
    if (this.retireTimer) clearTimeout(this.retireTimer);
    this.retireTimer = setTimeout(() => this.retire(), this.retireAfterMs);
    this.retireTimer.unref();
  }

  /** n packets read by the event loop. */
  read(n: number): void {
    this.count += n;
    if (this.count < BURST_PACKETS || this.policy === 'main') return;
    const now = performance.now();
    // reads that libuv had under way when it handed over are not a new burst; a retiring thread takes nothing
    if (now - this.windowStart < BURST_WINDOW_MS && Atomics.load(this.ctl, MODE_SLOT) !== MODE_THREAD && !this.retiring && this.start()) {
      // until the new thread is up the event loop keeps reading
      if (Atomics.load(this.ctl, READY_SLOT) === 1) this.handOver();
    }
    this.count = 0;
    this.windowStart = now;
  }

  /** The thread's hand-back marker came out of the ring: every packet it read is handled. */
  handedBack(): void {
    this.count = 0;
    this.windowStart = performance.now();
    this.resume();
    this.armRetire();
  }

  /** The event loop has read alone since the last hand-back: let the thread end. */
  private retire(): void {
    this.retireTimer = null;
    if (!this.started || this.retiring || Atomics.load(this.ctl, MODE_SLOT) !== MODE_MAIN) return;
    this.retiring = true;
    Atomics.store(this.ctl, RETIRE_SLOT, 1);
    Atomics.notify(this.ctl, MODE_SLOT);
  }

  /**
   * The thread ended. Retired (exit code 0): the next burst starts a new one.
   * Otherwise it failed: the event loop reads from now on.
   */
  threadExited(code: number): void {
    if (this.retireTimer) clearTimeout(this.retireTimer);
    this.retireTimer = null;
    const retired = this.retiring && code === 0;
    this.retiring = false;
    this.started = false;
    Atomics.store(this.ctl, READY_SLOT, 0);
    Atomics.store(this.ctl, RETIRE_SLOT, 0);
    if (!retired) this.policy = 'main';
    Atomics.store(this.ctl, MODE_SLOT, MODE_MAIN);
    this.resume();
    trimMallocSoon();
  }

  private handOver(): void {
    this.pause();
    this.handovers++;
    Atomics.store(this.ctl, MODE_SLOT, MODE_THREAD);
    Atomics.notify(this.ctl, MODE_SLOT);
  }
}

/** The thread's side: sleeps while the event loop reads, and decides when to hand back. */
export class ThreadReading {
  private count = 0;
  /** monotonic: a wall clock stepped back would keep the window open, and reading on this thread, for as long as the step */
  private windowStart = performance.now();

  constructor(
    private readonly ctl: Int32Array,
    private readonly policy: ReaderPolicy,
    /** hands back below this many packets in a window (QUIET_PACKETS; tests pass Infinity to hand back at every window's end) */
    private readonly quietPackets: number = QUIET_PACKETS,
  ) {
    Atomics.store(ctl, READY_SLOT, 1);
  }

  /** The event loop asked this idle thread to end. */
  get retired(): boolean {
    return Atomics.load(this.ctl, RETIRE_SLOT) === 1;
  }

  /** Blocks up to `ms` while the event loop reads; true when it is the thread's turn. */
  awaitTurn(ms: number): boolean {
    if (Atomics.load(this.ctl, MODE_SLOT) === MODE_THREAD) return true;
    Atomics.wait(this.ctl, MODE_SLOT, MODE_MAIN, ms);
    if (Atomics.load(this.ctl, MODE_SLOT) !== MODE_THREAD) return false;
    this.count = 0;
    this.windowStart = performance.now();
    return true;
  }

  /**
   * n packets read (0 after an idle poll). True when the rate has fallen so
   * far that the thread should hand back: the caller then writes the marker.
   */
  read(n: number): boolean {
    this.count += n;
    const now = performance.now();
    if (now - this.windowStart < QUIET_WINDOW_MS) return false;
    const quiet = this.count < this.quietPackets && this.policy === 'auto';
    this.count = 0;
    this.windowStart = now;
    if (quiet) Atomics.store(this.ctl, MODE_SLOT, MODE_MAIN);
    return quiet;
  }
}

/**
 * Starts a reader thread, unref'd (it never keeps the process alive). When it
 * ends — retired, or failed — `onExit` gets its exit code; the owner passes it
 * to MainReading.threadExited unless it is closing. null if it cannot start.
 */
export function spawnReaderThread(url: URL, workerData: unknown, onExit: (code: number) => void, log: (msg: string) => void): Worker | null {
  try {
    // worker_threads is loaded at the first burst, not at start: an idle daemon never needs it (~1.4 MB)
    const { Worker: WorkerThread } = cjsRequire('node:worker_threads') as typeof import('node:worker_threads');
    const w = new WorkerThread(url, { workerData });
    w.on('error', (err) => log(`reader thread failed (${err.message}); the event loop reads`));
    w.on('exit', onExit);
    w.unref();
    return w;
  } catch (err) {
    log(`reader thread unavailable (${(err as Error).message}); the event loop reads`);
    return null;
  }
}
