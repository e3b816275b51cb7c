// A PATH that lacks chosen programs but keeps node and everything else: a
// temporary directory of symlinks to every program in the usual directories,
// minus `without`, plus `scripts` (name → shell script text) written there.
// Tests point PATH at it to see what meshctl says when a program is missing.
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export interface PathShim {
  dir: string;
  cleanup(): void;
}

export function makePathShim(without: readonly string[], scripts: Record<string, string> = {}): PathShim {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-path-shim-'));
  const seen = new Set<string>([...without, ...Object.keys(scripts)]);
  for (const d of SYSTEM_DIRS) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (seen.has(n)) continue;
      seen.add(n);
      symlinkSync(join(d, n), join(dir, n));
    }
  }
  for (const [name, text] of Object.entries(scripts)) writeFileSync(join(dir, name), text, { mode: 0o755 });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
