// How far V8 lets its heap grow past what the last full collection left live
// before it collects again. V8 picks that factor itself, up to 4x when the
// heap's limit is large (a few GB on a machine with memory), so a process that
// promotes a lot of short-lived data to old space can hold three times its
// live heap in garbage before a mark-compact: control at 5,000 nodes grew
// from ~170 MiB live to ~700 MiB used during churn, which its RSS peak
// followed. The flag is read at each full collection, so setting it at run
// time takes effect from the next one on (measured: the same peak as the
// command-line flag).
import { setFlagsFromString } from 'node:v8';

let applied: number | null = null;

/** Caps V8's heap growth between full collections at `percent` % of what the last one left live (process-wide). */
export function boundHeapGrowth(percent: number): void {
  if (!Number.isSafeInteger(percent) || percent < 1 || percent > 1000)
    throw new RangeError(`heap growing percent must be an integer in 1-1000, got ${percent}`);
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  applied = percent;
}

/** The bound boundHeapGrowth set in this process, or null when it was not called (V8 picks its own). */
export function heapGrowthBound(): number | null {
  return applied;
}
