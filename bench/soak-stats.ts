// The soak's arithmetic, kept pure so it is unit-tested: ping replies parsed
// into (sequence, send time), the windows in which a flow lost traffic (minus
// the time a node was taken down on purpose), percentiles, and growth as a
// least-squares slope per hour.

/** One reply: the echo's sequence number (unwrapped past 65,535) and when it was sent, ms since 1970. */
export interface Reply {
  seq: number;
  sentMs: number;
}

/** A span of wall time, ms since 1970, [from, to]. */
export type Span = readonly [number, number];

const PING_LINE = /^\[(\d+(?:\.\d+)?)\] \d+ bytes from [^:]+: icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms(?: \(DUP!\))?$/;
/** ping's icmp_seq is 16 bits. */
const SEQ_SPACE = 65536;

/**
 * Parses the reply lines of `ping -D -n` (everything else is ignored): the send time is the
 * receive stamp less the round trip. Sequence numbers are unwrapped past 65,535.
 */
export class PingParser {
  /** the highest unwrapped sequence so far, and what was added to the raw one to get it */
  private last = -1;
  private base = 0;
  readonly replies: Reply[] = [];

  push(line: string): void {
    const m = PING_LINE.exec(line.trim());
    if (!m || line.includes('DUP!')) return;
    const raw = Number(m[2]);
    let seq = raw + this.base;
    if (this.last >= 0 && seq < this.last - SEQ_SPACE / 2)
      seq += SEQ_SPACE; // the counter wrapped
    else if (this.last >= 0 && seq > this.last + SEQ_SPACE / 2) seq -= SEQ_SPACE; // a late reply from before the wrap
    if (seq > this.last) {
      this.last = seq;
      this.base = seq - raw;
    }
    this.replies.push({ seq, sentMs: Number(m[1]) * 1000 - Number(m[3]) });
  }
}

/** How much of [a, b] the spans cover (they may overlap each other). */
export function covered(a: number, b: number, spans: readonly Span[]): number {
  const parts = spans
    .map(([x, y]) => [Math.max(a, x), Math.min(b, y)] as const)
    .filter(([x, y]) => y > x)
    .sort((p, q) => p[0] - q[0]);
  let total = 0;
  let end = -Infinity;
  for (const [x, y] of parts) {
    if (y <= end) continue;
    total += y - Math.max(x, end);
    end = y;
  }
  return total;
}

/** A stretch in which a flow lost traffic: when it began (ms since 1970) and how long it lasted, planned downtime left out. */
export interface LostWindow {
  fromMs: number;
  ms: number;
}

/**
 * The windows in which a flow sending one echo every `intervalMs` lost traffic: for each
 * run of missing sequence numbers between replies a and b, the span from half an interval after
 * a was sent to half an interval before b was sent (one lost echo: one interval), less the part
 * inside `excluded` (a node of the flow taken down on purpose). `endMs`: when sending stopped,
 * so echoes lost after the last reply count too.
 */
export function lostWindows(replies: readonly Reply[], intervalMs: number, excluded: readonly Span[] = [], endMs?: number): LostWindow[] {
  const bySeq = [...new Map(replies.map((r) => [r.seq, r])).values()].sort((x, y) => x.seq - y.seq);
  const out: LostWindow[] = [];
  const add = (from: number, to: number): void => {
    const w = to - from - covered(from, to, excluded);
    if (w > 0.5) out.push({ fromMs: from, ms: w });
  };
  for (let i = 1; i < bySeq.length; i++) {
    const a = bySeq[i - 1]!;
    const b = bySeq[i]!;
    if (b.seq > a.seq + 1) add(a.sentMs + intervalMs / 2, b.sentMs - intervalMs / 2);
  }
  const last = bySeq.at(-1);
  if (last && endMs !== undefined && endMs - last.sentMs > intervalMs * 1.5) add(last.sentMs + intervalMs / 2, endMs);
  return out;
}

/** The p-quantile (0..1) by nearest rank; NaN for none. */
export function quantile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(s.length * p) - 1))]!;
}

/** Least-squares slope of v over t, in v per hour (t in ms); NaN with fewer than two distinct times. */
export function slopePerHour(points: readonly { tMs: number; v: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mt = points.reduce((s, p) => s + p.tMs, 0) / n;
  const mv = points.reduce((s, p) => s + p.v, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.tMs - mt) * (p.v - mv);
    den += (p.tMs - mt) ** 2;
  }
  return den === 0 ? NaN : (num / den) * 3_600_000;
}

/** How much a counter rose over its readings; one that went down was reset (its engine restarted) and counts from 0. */
export function counterIncrease(readings: readonly number[]): number {
  let total = 0;
  for (let i = 1; i < readings.length; i++) {
    const a = readings[i - 1]!;
    const b = readings[i]!;
    if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
    total += b >= a ? b - a : b;
  }
  return total;
}
