// ISO 8601 UTC timestamps (as Date.prototype.toISOString writes them) built
// from the UTC fields. V8's toISOString goes through its date cache, which maps
// ~0.9 MB of ICU time-zone data into a daemon that never needs a time zone
// (docs/performance.md, "Idle memory").
const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

export function isoTime(ms: number = Date.now()): string {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  // outside 0000–9999 the format has a sign and six digits: leave those to V8 (throws for an invalid time, as toISOString does)
  if (!(y >= 0 && y <= 9999)) return d.toISOString();
  return `${pad(y, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}

/** Code-unit order: the same on every host, and without the ICU collator localeCompare loads (~2.7 MB). */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
