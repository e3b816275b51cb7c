// `meshctl daemon` without the CLI: the daemon runs for months, and the
// command-line parser and the other commands' modules it would never use cost
// it ~1.5 MB of RSS (docs/performance.md, "Idle memory"). bin/meshctl comes here
// only when every argument is one this parser knows; anything else (--help, a
// typo) goes to the full CLI, which gives the usual help and usage errors.
import { DEFAULT_IFNAME, DEFAULT_PORT, DEFAULT_SOCKET, DEFAULT_STATE_DIR } from '../localapi/types.js';
import { EXIT } from './errors.js';
import { meshctlVersion } from './version.js';
import { socketFromEnv, stateDirFromEnv } from '../util/knobs.js';
import { parseMetricsListen, type MetricsListen } from '../util/metrics-http.js';

export interface DaemonArgs {
  socket: string;
  stateDir: string;
  ifname: string;
  port: number;
  metricsListen?: MetricsListen | null;
}

const VALUE_FLAGS = new Set(['--socket', '--state-dir', '--ifname', '--port', '--metrics-listen']);
const ALLOW_REMOTE = '--metrics-allow-remote';

/**
 * The daemon's settings from `[--socket P] daemon [--state-dir D] [--ifname I] [--port N] [--metrics-listen A
 * [--metrics-allow-remote]]`, or null to leave it to the full CLI.
 */
export function leanDaemonArgs(args: string[], env: NodeJS.ProcessEnv = process.env): DaemonArgs | null {
  const v: Record<string, string> = {};
  let sawDaemon = false;
  let allowRemote = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === 'daemon' && !sawDaemon) {
      sawDaemon = true;
      continue;
    }
    if (a === ALLOW_REMOTE && sawDaemon && !allowRemote) {
      allowRemote = true;
      continue;
    }
    const eq = a.indexOf('=');
    const [flag, inline] = eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    // --socket is global (before the command); the rest belong to `daemon`
    if (!VALUE_FLAGS.has(flag) || (flag === '--socket') === sawDaemon) return null;
    const value = inline ?? args[++i];
    if (!value || value.startsWith('-')) return null; // missing or empty: the full CLI says what is wrong
    v[flag] = value;
  }
  if (!sawDaemon) return null;
  const port = v['--port'] ?? String(DEFAULT_PORT);
  if (!/^\d+$/.test(port) || Number(port) > 65535) return null;
  let metricsListen: MetricsListen | null = null;
  if (v['--metrics-listen'] !== undefined) {
    try {
      metricsListen = parseMetricsListen(v['--metrics-listen'], allowRemote);
    } catch {
      return null; // the full CLI says what is wrong
    }
  } else if (allowRemote) return null;
  return {
    ...(metricsListen ? { metricsListen } : {}),
    socket: v['--socket'] ?? socketFromEnv(env) ?? DEFAULT_SOCKET,
    stateDir: v['--state-dir'] ?? stateDirFromEnv(env) ?? DEFAULT_STATE_DIR,
    ifname: v['--ifname'] ?? DEFAULT_IFNAME,
    port: Number(port),
  };
}

export async function runDaemon(o: DaemonArgs): Promise<void> {
  const { startDaemon } = await import('../daemon/main.js');
  try {
    await startDaemon({ ...o, version: meshctlVersion() });
  } catch (err) {
    process.stderr.write(`meshctl daemon: ${(err as Error).message}\n`);
    process.exit(EXIT.FAILURE);
  }
}
