// Most of an idle daemon's RSS is Node's own binary: ~43 MiB of file-backed
// pages, largely code and read-only data that ran once (bootstrap, module
// loading, TLS and key set-up). Dropping them from our page tables when the
// daemon goes quiet (MADV_DONTNEED) costs nothing in correctness — a clean page
// of a read-only file mapping comes back from the page cache unchanged on its
// next use — and makes them reclaimable when no other process maps them.
// A mapping holding any anonymous page (a copy-on-write page such as RELRO
// data the loader wrote) or swapped page is left alone: there DONTNEED would
// lose data. Measured in docs/performance.md, "Idle memory".
import { readFileSync, realpathSync } from './cjs.js';
import { koffi } from './koffi.js';

const MADV_DONTNEED = 4;
type Madvise = (addr: bigint, len: bigint, advice: number) => number;
let madvise: Madvise | null | undefined;

export interface Range {
  start: bigint;
  length: bigint;
}

/** The read-only mappings of `exe` in an smaps text whose every page is the file's own. */
export function cleanMappings(smaps: string, exe: string): Range[] {
  const out: Range[] = [];
  for (const block of smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s+(.*)$/m.exec(block);
    if (!m || m[4] !== exe || m[3]!.includes('w')) continue;
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(block)?.[1] ?? NaN);
    if (kb('Anonymous') !== 0 || kb('Swap') !== 0) continue;
    const start = BigInt(`0x${m[1]}`);
    out.push({ start, length: BigInt(`0x${m[2]}`) - start });
  }
  return out;
}

/** Drops the node binary's clean resident pages from this process; the bytes of mappings dropped, or null where it cannot. */
export function dropBinaryPages(): bigint | null {
  if (process.platform !== 'linux') return null;
  if (madvise === undefined) {
    try {
      madvise = koffi.load('libc.so.6').func('int madvise(uintptr_t, size_t, int)') as Madvise;
    } catch {
      madvise = null;
    }
  }
  if (!madvise) return null;
  let ranges: Range[];
  try {
    ranges = cleanMappings(readFileSync('/proc/self/smaps', 'utf8'), realpathSync(process.execPath));
  } catch {
    return null;
  }
  let dropped = 0n;
  for (const r of ranges) if (madvise(r.start, r.length, MADV_DONTNEED) === 0) dropped += r.length;
  return dropped;
}
