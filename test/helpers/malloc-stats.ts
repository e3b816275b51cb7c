// glibc malloc's own count of what the process holds (mallinfo2, summed over
// every arena), through koffi: for tests and benches that bound native memory.
// Null where it cannot be read (not Linux with glibc 2.33 or later).
import { koffi } from '../../src/util/koffi.js';

export interface MallocFigures {
  /** bytes malloc got from the system with brk/sbrk and in arena heaps (non-mmapped) */
  arena: number;
  /** bytes in chunks served by their own mmap (large allocations) */
  mmapped: number;
  /** bytes in use by the program */
  inUse: number;
  /** bytes free inside malloc's heaps: kept, counted in RSS where touched */
  free: number;
  /** free bytes at the top of the main heap that trim could release */
  topReleasable: number;
}

type Fn = (...a: unknown[]) => unknown;
let lib: { mallinfo2: Fn; trim: Fn } | null | undefined;

function libc(): { mallinfo2: Fn; trim: Fn } | null {
  if (lib !== undefined) return lib;
  try {
    const l = koffi.load('libc.so.6');
    koffi.struct('mallinfo2_t', {
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
    lib = { mallinfo2: l.func('mallinfo2_t mallinfo2(void)') as Fn, trim: l.func('int malloc_trim(size_t)') as Fn };
  } catch {
    lib = null;
  }
  return lib;
}

export function mallocFigures(): MallocFigures | null {
  const l = libc();
  if (!l) return null;
  const m = l.mallinfo2() as Record<string, number | bigint>;
  const n = (k: string): number => Number(m[k]);
  return { arena: n('arena'), mmapped: n('hblkhd'), inUse: n('uordblks'), free: n('fordblks'), topReleasable: n('keepcost') };
}

/** malloc_trim(0): returns free pages of every arena to the system. */
export function mallocTrim(): boolean {
  const l = libc();
  return l ? l.trim(0) === 1 : false;
}
