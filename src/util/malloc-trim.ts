// glibc's allocator, as a long-running daemon needs it: free pages handed back
// (malloc_trim), big blocks kept out of the brk heap (a fixed mmap threshold),
// and its own figures (mallinfo2) for `status --json`. Each is a no-op off glibc.
import { koffi } from './koffi.js';

/** mallopt(3)'s parameter number of M_MMAP_THRESHOLD */
const M_MMAP_THRESHOLD = -3;
/**
 * Blocks of at least this size get a mapping of their own, unmapped when freed. 128 KiB is glibc's own starting value;
 * what matters is that it stays there (see fixMmapThreshold). The data path allocates nothing this big per packet
 * (its largest, a GSO batch, is 64 KiB), so the mappings are made only for long-lived buffers.
 */
export const MMAP_THRESHOLD_BYTES = 128 * 1024;

interface Libc {
  trim: (pad: number) => number;
  mallopt: (param: number, value: number) => number;
  mallinfo2: () => MallInfo2;
}

interface MallInfo2 {
  arena: number;
  ordblks: number;
  smblks: number;
  hblks: number;
  hblkhd: number;
  usmblks: number;
  fsmblks: number;
  uordblks: number;
  fordblks: number;
  keepcost: number;
}

let libc: Libc | null | undefined;

function glibc(): Libc | null {
  if (libc === undefined) {
    try {
      const l = koffi.load('libc.so.6');
      const info = koffi.struct('mallinfo2', {
        arena: 'size_t',
        ordblks: 'size_t',
        smblks: 'size_t',
        hblks: 'size_t',
        hblkhd: 'size_t',
        usmblks: 'size_t',
        fsmblks: 'size_t',
        uordblks: 'size_t',
        fordblks: 'size_t',
        keepcost: 'size_t',
      });
      libc = {
        trim: l.func('int malloc_trim(size_t)') as Libc['trim'],
        mallopt: l.func('int mallopt(int, int)') as Libc['mallopt'],
        mallinfo2: l.func('mallinfo2', info, []) as Libc['mallinfo2'],
      };
    } catch {
      libc = null;
    }
  }
  return libc;
}

/**
 * Returns free malloc memory to the OS, soon after the caller's thread teardown; a no-op off glibc. glibc keeps the
 * malloc arenas of threads that have ended, with their free pages resident; after a reader thread retires,
 * malloc_trim(0) hands them back (measured: 81 → 72 MiB RSS after a transfer; docs/performance.md, "Idle memory").
 */
export function trimMallocSoon(delayMs = 1000): void {
  setTimeout(trimMalloc, delayMs).unref();
}

/** malloc_trim(0) now: free pages of every arena go back to the OS. True when some were released; false off glibc. */
export function trimMalloc(): boolean {
  return glibc()?.trim(0) === 1;
}

/**
 * Keeps glibc's mmap threshold at `bytes` for the life of the process. By default glibc raises the threshold to the
 * size of every mapped block that is freed (up to 32 MiB), so once the first engine's 0.5–2 MiB buffers (flow table,
 * rings, TUN slots) were freed, the next engine's came from the brk heap. There a freed block stays resident while
 * any live block lies above it, and blocks from one restart, TLS connection or map are freed in another order than
 * they were made: under steady traffic (the idle release that trims never runs) the daemon's brk heap grew by
 * ~1.5 MiB per engine restart (docs/reliability.md, "Growth"). Any explicit threshold turns the adjustment off
 * (mallopt(3)), so big blocks keep their own mappings and go back to the OS when freed. False off glibc.
 */
export function fixMmapThreshold(bytes = MMAP_THRESHOLD_BYTES): boolean {
  const l = glibc();
  return l !== null && l.mallopt(M_MMAP_THRESHOLD, bytes) === 1;
}

/** glibc's allocator as `status --json` shows it; bytes. */
export interface MallocFigures {
  /** the heaps' size (brk heap and thread arenas), in use or free */
  arenaBytes: number;
  /** allocated from them */
  inUseBytes: number;
  /** free inside them: resident until trimmed, unless never touched */
  freeBytes: number;
  /** blocks with a mapping of their own (at least the mmap threshold), and their bytes */
  mmappedBlocks: number;
  mmappedBytes: number;
}

/** The allocator's figures (mallinfo2, every arena), or null off glibc. */
export function mallocFigures(): MallocFigures | null {
  const l = glibc();
  if (!l) return null;
  const m = l.mallinfo2();
  return { arenaBytes: m.arena, inUseBytes: m.uordblks, freeBytes: m.fordblks, mmappedBlocks: m.hblks, mmappedBytes: m.hblkhd };
}
