// Durations as users type them: 500ms, 30s, 5m, 2h, 7d, or combinations (1h30m).
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or null when `s` is not a duration. */
export function parseDuration(s: string): number | null {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (const m of s.trim().matchAll(re)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    matched += m[0].length;
  }
  return matched > 0 && matched === s.trim().length ? Math.round(total) : null;
}
