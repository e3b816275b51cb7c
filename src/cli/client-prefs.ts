// The CLI's own remembered defaults, kept with conf in the user's config dir
// (MESHCTL_CONFIG_DIR overrides it): the login server and control CA file of
// the last successful `up`, and the state dir, interface and port each
// daemon socket was started with, so the next `up` needs no flags. Settings that
// decide who may change the daemon (the operator) live with the daemon, not here.
//
// Importing conf costs `up` ~60 ms of CPU (it loads ajv, ajv-formats and
// semver) before it can start the daemon, and most runs only read. So on Linux
// the file is read directly from the path conf uses (a test holds the two
// paths equal), and conf is loaded only to write a change, after `up` has
// succeeded (loading it while the daemon starts slowed the daemon more).
import { isDeepStrictEqual } from 'node:util';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from '../util/cjs.js';

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

const CONFIG_NAME = 'cli';

async function store() {
  const { default: Conf } = await import('conf');
  return new Conf<ClientPrefs>({ projectName: 'meshctl', projectSuffix: '', cwd: process.env.MESHCTL_CONFIG_DIR || undefined, configName: CONFIG_NAME });
}

/** Where conf keeps the file on Linux (env-paths' rule); null elsewhere, where only conf knows. */
export function clientPrefsPath(env: NodeJS.ProcessEnv = process.env, platform: string = process.platform): string | null {
  if (env.MESHCTL_CONFIG_DIR) return join(env.MESHCTL_CONFIG_DIR, `${CONFIG_NAME}.json`);
  if (platform !== 'linux') return null;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'meshctl', `${CONFIG_NAME}.json`);
}

function readDirect(path: string): ClientPrefs {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as ClientPrefs) : {};
  } catch {
    return {}; // missing or unreadable: as conf would start, empty
  }
}

export async function loadClientPrefs(): Promise<ClientPrefs> {
  const path = clientPrefsPath();
  if (path) return readDirect(path);
  try {
    return (await store()).store;
  } catch {
    return {};
  }
}

/** True when saving `p` over `saved` would change nothing (the usual repeated `up`). */
export function prefsUnchanged(saved: ClientPrefs, p: ClientPrefs): boolean {
  return Object.entries(p).every(([k, v]) => v === undefined || isDeepStrictEqual(saved[k as keyof ClientPrefs], v));
}

export async function saveClientPrefs(p: ClientPrefs, saved?: ClientPrefs): Promise<void> {
  if (saved && prefsUnchanged(saved, p)) return;
  try {
    const s = await store();
    for (const [k, v] of Object.entries(p)) if (v !== undefined) s.set(k as keyof ClientPrefs, v);
  } catch {
    /* an unwritable home must not fail `up`; the flags still work */
  }
}
