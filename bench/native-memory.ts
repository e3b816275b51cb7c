// Where a process's native memory is, for the control bench: glibc's own
// count of what malloc holds (mallinfo2, summed over every arena), how much of
// it is free but kept, and the process's mappings from /proc/PID/smaps by
// kind (the main heap, malloc's per-thread arenas, other anonymous mappings).
// Linux with glibc only; each figure is null where it cannot be read.
import { readFileSync } from 'node:fs';
import { mallocFigures } from '../test/helpers/malloc-stats.js';

export { mallocFigures, mallocTrim } from '../test/helpers/malloc-stats.js';

export interface MappingFigures {
  /** RSS of the brk heap (malloc's main arena) */
  brkHeapKiB: number;
  /** per-thread malloc arenas: anonymous mappings that start on a 64 MiB boundary (HEAP_MAX_SIZE) */
  arenaHeaps: number;
  arenaHeapsRssKiB: number;
  /** every other anonymous mapping (V8's heap, large malloc chunks, thread stacks) */
  otherAnonRssKiB: number;
  /** file-backed mappings (the node binary, libraries) */
  fileRssKiB: number;
}

const ARENA_ALIGN = 64 * 1024 * 1024;

export function mappingFigures(pid: number | 'self' = 'self'): MappingFigures | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  const out: MappingFigures = { brkHeapKiB: 0, arenaHeaps: 0, arenaHeapsRssKiB: 0, otherAnonRssKiB: 0, fileRssKiB: 0 };
  let kind: 'brk' | 'arena' | 'anon' | 'file' = 'anon';
  let prevArenaEnd = -1;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      const start = Number.parseInt(head[1]!, 16);
      const end = Number.parseInt(head[2]!, 16);
      const name = head[5]!;
      if (name === '[heap]') kind = 'brk';
      else if (name === '' && head[4] === '0') {
        // an arena heap starts aligned; its unused rest follows as a PROT_NONE mapping
        if (start % ARENA_ALIGN === 0) {
          kind = 'arena';
          out.arenaHeaps += Math.ceil((end - start) / ARENA_ALIGN);
          prevArenaEnd = end;
        } else if (start === prevArenaEnd) kind = 'arena';
        else kind = 'anon';
      } else if (name.startsWith('[')) kind = 'anon';
      else kind = 'file';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const kib = Number(rss[1]);
    if (kind === 'brk') out.brkHeapKiB += kib;
    else if (kind === 'arena') out.arenaHeapsRssKiB += kib;
    else if (kind === 'anon') out.otherAnonRssKiB += kib;
    else out.fileRssKiB += kib;
  }
  return out;
}

/** One line: malloc's figures and the mappings, in MiB. */
export function nativeMemoryLine(): string {
  const mib = (b: number): string => (b / 1048576).toFixed(0);
  const m = mallocFigures();
  const p = mappingFigures();
  const malloc = m ? `malloc: ${mib(m.arena)} MiB in heaps (${mib(m.inUse)} in use, ${mib(m.free)} free), ${mib(m.mmapped)} MiB mmapped` : 'malloc: n/a';
  const maps = p
    ? `mappings RSS: brk heap ${mib(p.brkHeapKiB * 1024)} MiB, ${p.arenaHeaps} arena heaps ${mib(p.arenaHeapsRssKiB * 1024)} MiB,` +
      ` other anon ${mib(p.otherAnonRssKiB * 1024)} MiB, files ${mib(p.fileRssKiB * 1024)} MiB`
    : 'mappings: n/a';
  return `${malloc}; ${maps}`;
}
