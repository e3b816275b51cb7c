// glibc keeps the malloc arenas of threads that have ended, with their free
// pages resident; after a reader thread retires, malloc_trim(0) hands them
// back (measured: 81 → 72 MiB RSS after a transfer; docs/performance.md, "Idle memory").
import { koffi } from './koffi.js';

let trim: ((pad: number) => number) | null | undefined;

/** Returns free malloc memory to the OS, soon after the caller's thread teardown; a no-op off glibc. */
export function trimMallocSoon(delayMs = 1000): void {
  setTimeout(() => {
    if (trim === undefined) {
      try {
        trim = koffi.load('libc.so.6').func('int malloc_trim(size_t)') as (pad: number) => number;
      } catch {
        trim = null;
      }
    }
    trim?.(0);
  }, delayMs).unref();
}
