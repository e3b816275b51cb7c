// The CLI's own remembered defaults, a small JSON file in the user's config
// dir (MESHCTL_CONFIG_DIR, else $XDG_CONFIG_HOME/meshctl or ~/.config/meshctl):
// the login server and control CA file of the last successful `up`, and the
// state dir, interface and port each daemon socket was started with, so the
// next `up` needs no flags. Settings that decide who may change the daemon
// (the operator) live with the daemon, not here.
//
// The path and the JSON are the ones the conf package uses, so files it wrote
// read here. conf itself is not used, for a measured reason (docs/performance.md,
// "Start-up"): importing it (ajv, ajv-formats, semver) costs `up` ~60 ms before
// it can start the daemon, and saving through it took 200–270 ms at the end of a
// first `up` while the new daemon was busy, where one atomic write takes a few.
import { isDeepStrictEqual } from 'node:util';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from '../util/cjs.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { configDirFromEnv } from '../util/knobs.js';

export interface DaemonParams {
  stateDir: string;
  ifname: string;
  port: number;
}

export interface ClientPrefs {
  loginServer?: string;
  controlCa?: string;
  /** per daemon socket: how `up` last started it, so a restart after a crash finds the same state dir */
  daemons?: Record<string, DaemonParams>;
}

export function clientPrefsPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = configDirFromEnv(env) ?? join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'meshctl');
  return join(dir, 'cli.json');
}

/** Missing, unreadable or corrupt: empty, so `up` still works from its flags. */
export function loadClientPrefs(env: NodeJS.ProcessEnv = process.env): ClientPrefs {
  try {
    const v: unknown = JSON.parse(readFileSync(clientPrefsPath(env), 'utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as ClientPrefs) : {};
  } catch {
    return {};
  }
}

/** True when saving `p` over `saved` would change nothing (the usual repeated `up`). */
export function prefsUnchanged(saved: ClientPrefs, p: ClientPrefs): boolean {
  return Object.entries(p).every(([k, v]) => v === undefined || isDeepStrictEqual(saved[k as keyof ClientPrefs], v));
}

/** Merges `p` (undefined keys untouched) into what is on disk; writes only a change. */
export function saveClientPrefs(p: ClientPrefs, env: NodeJS.ProcessEnv = process.env): void {
  const saved = loadClientPrefs(env);
  if (prefsUnchanged(saved, p)) return;
  const next: ClientPrefs = { ...saved };
  for (const [k, v] of Object.entries(p)) if (v !== undefined) (next as Record<string, unknown>)[k] = v;
  try {
    writeFileAtomic(clientPrefsPath(env), JSON.stringify(next, undefined, '\t') + '\n');
  } catch {
    /* an unwritable home must not fail `up`; the flags still work */
  }
}
