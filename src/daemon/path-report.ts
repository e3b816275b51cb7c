// What a node tells control of its paths, with its endpoint updates: how many
// peers are direct and how many relayed (control's admin page shows it). The
// counts go only when they changed since the last report control took, and at
// most once per interval, so a path that flaps costs control one small request
// per interval at most and a steady node none.
import type { PathCounts } from '../netmap/types.js';

/**
 * The shortest time between two path reports. Paths change within seconds when a direct path lapses or is proven
 * (docs/architecture.md, path selection); 10 s keeps the page current to a glance while a flapping path on every node
 * of a large mesh costs control one request per node per 10 s at most.
 */
export const PATH_REPORT_MIN_INTERVAL_MS = 10_000;

export class PathReporter {
  /** the counts control last took; null: none since the map stream opened (control drops them when a node goes offline) */
  private last: PathCounts | null = null;
  private lastMs = -Infinity;

  constructor(private readonly minIntervalMs = PATH_REPORT_MIN_INTERVAL_MS) {}

  /** The counts to send with this endpoint update, or undefined: unchanged since the last report, or too soon after it. */
  due(now: PathCounts, nowMs: number): PathCounts | undefined {
    if (this.last && this.last.direct === now.direct && this.last.relay === now.relay) return undefined;
    if (nowMs - this.lastMs < this.minIntervalMs) return undefined;
    return now;
  }

  /** The report is on its way: the next one waits for a change and the interval. */
  sending(counts: PathCounts, nowMs: number): void {
    this.last = counts;
    this.lastMs = nowMs;
  }

  /** Control did not take it, or forgot it (a new map stream): the next poll reports again, the interval still applying. */
  forget(): void {
    this.last = null;
  }
}
