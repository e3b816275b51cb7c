// The daemon's memory for `status --json` counters: the process figures, what
// each V8 heap space holds in RAM (the young generation is what grows under
// load), glibc's heaps (memory freed there stays resident until trimmed), and
// how often the idle release ran (util/idle-memory.ts).
import { getHeapSpaceStatistics } from 'node:v8';
import { mallocFigures, type MallocFigures } from '../util/malloc-trim.js';

export interface MemoryCounters extends NodeJS.MemoryUsage {
  heapSpaces: Record<string, number>;
  /** glibc's allocator (null off glibc) */
  malloc: MallocFigures | null;
  idleReleases: number;
  /** ms since the last idle release, null before the first: says whether a reading came before or after it */
  idleReleaseAgoMs: number | null;
}

export function memoryCounters(idle: { releases: number; lastReleaseAt: number | null }, now = performance.now()): MemoryCounters {
  const heapSpaces: Record<string, number> = {};
  for (const s of getHeapSpaceStatistics()) if (s.physical_space_size > 0) heapSpaces[s.space_name] = s.physical_space_size;
  return {
    ...process.memoryUsage(),
    heapSpaces,
    malloc: mallocFigures(),
    idleReleases: idle.releases,
    idleReleaseAgoMs: idle.lastReleaseAt === null ? null : Math.round(now - idle.lastReleaseAt),
  };
}
