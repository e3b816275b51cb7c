// glibc malloc's own count of what the process holds (mallinfo2, summed over
// every arena), for tests and benches that bound native memory: the daemon's
// reading (src/util/malloc-trim.ts) under shorter names. Null where it cannot
// be read (not Linux with glibc 2.33 or later).
import { mallocFigures as allocatorFigures, trimMalloc } from '../../src/util/malloc-trim.js';

export interface MallocFigures {
  /** bytes malloc got from the system with brk/sbrk and in arena heaps (non-mmapped) */
  arena: number;
  /** bytes in chunks served by their own mmap (large allocations) */
  mmapped: number;
  /** bytes in use by the program */
  inUse: number;
  /** bytes free inside malloc's heaps: kept, counted in RSS where touched */
  free: number;
}

export function mallocFigures(): MallocFigures | null {
  const m = allocatorFigures();
  return m && { arena: m.arenaBytes, mmapped: m.mmappedBytes, inUse: m.inUseBytes, free: m.freeBytes };
}

/** malloc_trim(0): returns free pages of every arena to the system. */
export const mallocTrim = trimMalloc;
