// Durations on the command line: "500ms", "5s", "2m", "1h", "1d" (as Go and Tailscale accept).
import { CliError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new CliError('USAGE', `${flag}: "${text}" is not a duration; use a number with a unit, e.g. 30s, 5m, 1h`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}
