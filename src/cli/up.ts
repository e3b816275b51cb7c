// `meshctl up`: start the daemon unless it runs, then join the network and
// return once the node is up (or fail with the cause).
import { spawn } from 'node:child_process';
import { closeSync, cjsRequire, existsSync, openSync, readFileSync } from '../util/cjs.js';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { DaemonNotRunning, type LocalClient } from '../localapi/client.js';
import {
  ApiError,
  DEFAULT_IFNAME,
  DEFAULT_PORT,
  DEFAULT_STATE_DIR,
  LOCALAPI,
  type Status,
  type UpLine,
  type UpRequest,
  type ExitNodeSettings,
} from '../localapi/types.js';
import { loadClientPrefs, saveClientPrefs } from './client-prefs.js';
import { boolArg, clientOf, durationArg, portArg, prefixListArg, printJson, socketOf } from './context.js';
import { CliError, fromApi } from './errors.js';
import { startProgress } from './ui/progress.js';
import { meshctlVersion } from './version.js';
import { isPrintable, terminalSafe } from '../util/text.js';
import { AUTH_KEY_ENV, daemonNodeArgs, JOIN_ENV, knobText, stateDirFromEnv } from '../util/knobs.js';
import { resolveJoin, type JoinInfo } from './join.js';
import { metricsAllowRemoteOption, metricsListenOf, metricsListenOption, type MetricsOpts } from './metrics.js';

const DAEMON_START_TIMEOUT_MS = 10_000;
// the daemon answers ~0.3 s after it is spawned; a 50 ms poll lost 25 ms on average
const DAEMON_POLL_MS = 10;

interface UpOpts extends ExitNodeSettings, MetricsOpts {
  /** --login-server, repeatable: the replicas of one network, tried in order */
  loginServer?: string[];
  authKey?: string;
  join?: string;
  joinFile?: string;
  hostname?: string;
  controlCa?: string;
  stateDir: string;
  ifname: string;
  port: number;
  foreground?: boolean;
  timeout?: number;
  json?: boolean;
  acceptDns?: boolean;
  advertiseRoutes?: string[];
  acceptRoutes?: boolean;
  snatSubnetRoutes?: boolean;
}

/** An auth key is ~60 characters (mskey-<12 hex>-<48 hex>); a file holding more than this is not one. */
const MAX_AUTH_KEY_BYTES = 4096;

const { readSync } = cjsRequire('node:fs') as typeof import('node:fs');

/** Reads at most MAX_AUTH_KEY_BYTES + 1 bytes, so a device or a huge file is refused rather than read whole. */
function readKeyFile(path: string, source: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new CliError('USAGE', `${source}: cannot read auth key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const buf = Buffer.alloc(MAX_AUTH_KEY_BYTES + 1);
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
    if (n > MAX_AUTH_KEY_BYTES) throw new CliError('USAGE', `${source}: ${path} is longer than ${MAX_AUTH_KEY_BYTES} bytes: it is not an auth key file`);
    return buf.toString('utf8', 0, n).trim();
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError('USAGE', `${source}: cannot read auth key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * The auth key from --auth-key, else from $MESHCTL_AUTH_KEY; either may be
 * `file:PATH`. The environment and a file keep it out of the process list, which
 * any local user can read. The key goes to the daemon only inside the local API
 * request, never on its command line or in its environment.
 */
export function resolveAuthKey(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = knobText(AUTH_KEY_ENV, env);
  const [value, source] = flag !== undefined ? [flag, '--auth-key'] : fromEnv ? [fromEnv, AUTH_KEY_ENV] : [undefined, ''];
  if (value === undefined) return undefined;
  const key = value.startsWith('file:') ? readKeyFile(value.slice(5), source) : value.trim();
  if (!key) throw new CliError('USAGE', `${source} is empty: give the key, or file:PATH of a file holding it`);
  if (!isPrintable(key, MAX_AUTH_KEY_BYTES) || /\s/.test(key)) throw new CliError('USAGE', `${source}: the auth key has spaces or control characters in it`);
  return key;
}

/** The daemon's environment: the caller's, without the auth key (a daemon runs for months; /proc/PID/environ keeps what it started with). */
export function daemonEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  delete out[AUTH_KEY_ENV];
  delete out[JOIN_ENV];
  return out;
}

function readCa(path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    const pem = readFileSync(path, 'utf8');
    if (!pem.includes('BEGIN CERTIFICATE')) throw new Error('no PEM certificate in it');
    return pem;
  } catch (err) {
    throw new CliError('USAGE', `--control-ca ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (get it with \`meshctl control ca\`)`);
  }
}

/** The join string from --join, --join-file or $MESHCTL_JOIN; it stands for --login-server, --auth-key and --control-ca. */
function joinOf(o: UpOpts): JoinInfo | undefined {
  const join = resolveJoin(o.join, o.joinFile);
  if (!join) return undefined;
  const clash = [o.loginServer && '--login-server', o.authKey && '--auth-key', o.controlCa && '--control-ca'].filter(Boolean);
  if (clash.length) throw new CliError('USAGE', `a join string holds the login server, the auth key and the server's key: drop ${clash.join(' and ')}`);
  return join;
}

function daemonArgs(socket: string, o: UpOpts): string[] {
  const metrics = o.metricsListen === undefined ? [] : ['--metrics-listen', o.metricsListen, ...(o.metricsAllowRemote ? ['--metrics-allow-remote'] : [])];
  return ['--socket', socket, 'daemon', '--state-dir', o.stateDir, '--ifname', o.ifname, '--port', String(o.port), ...metrics];
}

/** Starts a detached daemon and waits until its socket answers. */
async function spawnDaemon(client: LocalClient, socket: string, o: UpOpts): Promise<void> {
  const { mkdirSync } = await import('node:fs');
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const logFile = join(o.stateDir, 'daemon.log');
  const fd = openSync(logFile, 'a', 0o600);
  const nodeArgs = daemonNodeArgs();
  const child = spawn(process.execPath, [...nodeArgs, process.argv[1]!, ...daemonArgs(socket, o)], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: daemonEnv(),
  });
  closeSync(fd);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  const deadline = Date.now() + DAEMON_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited !== null) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-1)[0] : '';
      throw new CliError('FAILURE', `the daemon exited with status ${exited}: ${tail?.replace(/^\S+ meshctl daemon: /, '') || `see ${logFile}`}`);
    }
    // a stat per tick until the socket exists; a request only then (a stale socket just refuses)
    if (existsSync(socket)) {
      try {
        await client.get(LOCALAPI.status);
        child.unref();
        return;
      } catch (err) {
        if (!(err instanceof DaemonNotRunning)) throw err;
      }
    }
    await new Promise((r) => setTimeout(r, DAEMON_POLL_MS));
  }
  child.kill('SIGTERM');
  throw new CliError('TIMEOUT', `the daemon did not answer on ${socket} within ${DAEMON_START_TIMEOUT_MS / 1000}s: see ${logFile}`);
}

export function summary(s: Status): string {
  const t = (v: unknown): string => terminalSafe(v);
  const online = s.peers.filter((p) => p.online).length;
  return `${t(s.self?.name ?? '?')} is up: ${s.self?.ips.map(t).join(', ') ?? ''} on ${t(s.self?.ifname ?? '?')}, ${online} peer(s) online`;
}

async function up(o: UpOpts, cmd: Command): Promise<void> {
  const socket = socketOf(cmd);
  const client = clientOf(cmd);
  const metricsListen = metricsListenOf(o);
  const saved = loadClientPrefs();
  const remembered = saved.daemons?.[socket];
  if (remembered) {
    // flags win; what is not given comes from how this socket's daemon was started last
    if (cmd.getOptionValueSource('stateDir') === 'default') o.stateDir = remembered.stateDir;
    if (cmd.getOptionValueSource('ifname') === 'default') o.ifname = remembered.ifname;
    if (cmd.getOptionValueSource('port') === 'default') o.port = remembered.port;
  }
  const join = joinOf(o);
  const authKey = join ? join.authKey : resolveAuthKey(o.authKey);
  // with --foreground the daemon runs in this process: the programs it starts (ip) must not inherit the key
  delete process.env[AUTH_KEY_ENV];
  delete process.env[JOIN_ENV];
  const given = o.loginServer?.[0];
  const servers = join ? join.urls : o.loginServer;
  const req: UpRequest = {
    loginServer: servers ? servers[0] : saved.loginServer,
    // several: the daemon keeps them all and fails over between them (a join string may name several too)
    ...(servers && servers.length > 1 ? { loginServers: servers } : {}),
    authKey,
    hostname: o.hostname,
    controlCaPem: join ? undefined : readCa(o.controlCa ?? (given === undefined || given === saved.loginServer ? saved.controlCa : undefined)),
    controlPin: join?.pin,
    // a running daemon keeps its interface and port unless they are asked for
    ifname: cmd.getOptionValueSource('ifname') === 'default' && !remembered ? undefined : o.ifname,
    port: cmd.getOptionValueSource('port') === 'default' && !remembered ? undefined : o.port,
    timeoutMs: o.timeout,
    acceptDns: o.acceptDns,
    advertiseRoutes: o.advertiseRoutes,
    acceptRoutes: o.acceptRoutes,
    snatSubnetRoutes: o.snatSubnetRoutes,
    advertiseExitNode: o.advertiseExitNode,
    exitNode: o.exitNode,
    exitNodeAllowLanAccess: o.exitNodeAllowLanAccess,
  };
  let daemon: { stop(): Promise<void> } | null = null;
  let running = true;
  try {
    await client.get(LOCALAPI.status);
  } catch (err) {
    if (!(err instanceof DaemonNotRunning)) throw fromApi(err, socket);
    running = false;
  }
  // the endpoint belongs to the daemon's process: a running daemon keeps what it was started with
  if (running && metricsListen) process.stderr.write('meshctl up: the daemon is already running: --metrics-listen applies when it starts (restart it)\n');
  const progress = await startProgress(running ? 'connecting to the daemon' : 'starting the daemon');
  let status: Status | null = null;
  try {
    if (!running) {
      if (o.foreground) {
        const { startDaemon } = await import('../daemon/main.js');
        daemon = await startDaemon({ socket, stateDir: o.stateDir, ifname: o.ifname, port: o.port, version: meshctlVersion(), metricsListen });
      } else {
        await spawnDaemon(client, socket, o);
      }
    }
    // with several control URLs (replicas) the daemon tries the next while one cannot be reached, now and later
    let failure: CliError | null = null;
    await client.stream(LOCALAPI.up, req, (raw) => {
      const l = raw as UpLine;
      if (l.type === 'progress') progress.step(terminalSafe(l.message, 1024));
      else if (l.type === 'done') status = l.status;
      else failure = fromApi(new ApiError(l.error.code, l.error.message), socket);
    });
    if (failure) throw failure;
    if (!status) throw new CliError('FAILURE', 'the daemon ended `up` without an answer: see its log');
  } catch (err) {
    await progress.end();
    const e = err instanceof CliError ? err : fromApi(err, socket);
    if (daemon && o.foreground) await daemon.stop();
    throw e;
  }
  await progress.end();
  saveClientPrefs({
    loginServer: req.loginServer,
    controlCa: o.controlCa && !join ? resolve(o.controlCa) : undefined,
    daemons: { ...saved.daemons, [socket]: { stateDir: resolve(o.stateDir), ifname: o.ifname, port: o.port } },
  });
  if (o.json) printJson(status);
  else process.stdout.write(summary(status!) + '\n');
  if (o.foreground) await new Promise<never>(() => {}); // the daemon runs until a signal
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('start the daemon if needed, join the network and bring the interface up')
    .option(
      '--login-server <url>',
      'the control server, https://HOST:PORT (remembered); repeat it for replicas of one network: the daemon fails over between them',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option('--auth-key <key>', `auth key, or file:PATH to read it from a file (default: $${AUTH_KEY_ENV}; either keeps it out of the process list)`)
    .option(
      '--join <string>',
      `join with the string from \`meshctl control authkey create --join\`: control URL, server key pin and auth key in one (a secret: prefer --join-file or $${JOIN_ENV}, since every local user sees the command line)`,
    )
    .option('--join-file <path>', 'read the join string from this file (e.g. mode 0600)')
    .option('--hostname <name>', "this node's name in the network (default: the host name)")
    .option('--control-ca <pemfile>', "trust this certificate for the control server (from 'meshctl control ca')")
    .option('--state-dir <dir>', "the daemon's state directory", stateDirFromEnv() ?? DEFAULT_STATE_DIR)
    .option('--ifname <name>', 'the mesh interface', DEFAULT_IFNAME)
    .addOption(new Option('--port <n>', 'UDP port for WireGuard and disco (0 = any)').argParser(portArg).default(DEFAULT_PORT))
    .addOption(
      new Option('--accept-dns [bool]', "point this host's resolver at the mesh's names (default true; false leaves the OS alone; remembered)")
        .argParser(boolArg)
        .preset('true'),
    )
    .addOption(
      new Option('--advertise-routes <prefixes>', 'offer these subnets to the mesh, e.g. 192.168.1.0/24,fd00:1::/64 ("" withdraws all; remembered)').argParser(
        prefixListArg,
      ),
    )
    .addOption(new Option('--accept-routes [bool]', 'install the subnet routes peers advertise (default false; remembered)').argParser(boolArg).preset('true'))
    .addOption(
      new Option('--snat-subnet-routes [bool]', "masquerade forwarded subnet traffic to this router's LAN address (default true; remembered)")
        .argParser(boolArg)
        .preset('true'),
    )
    .addOption(
      new Option('--advertise-exit-node [bool]', 'offer this node as an exit node for the mesh (an admin approves it; remembered)')
        .argParser(boolArg)
        .preset('true'),
    )
    .option('--exit-node <name|ip>', 'send all internet traffic through this approved exit node ("" or --exit-node= turns it off; remembered)')
    .addOption(
      new Option('--exit-node-allow-lan-access [bool]', "with an exit node, keep this host's LAN reachable directly (default false; remembered)")
        .argParser(boolArg)
        .preset('true'),
    )
    .option('--foreground', 'run the daemon in this process (for service managers)')
    .addOption(metricsListenOption('the daemon'))
    .addOption(metricsAllowRemoteOption())
    .addOption(new Option('--timeout <dur>', 'give up after this long (e.g. 30s)').argParser(durationArg))
    .option('--json', 'print the resulting status as JSON')
    .action(async (o: UpOpts, cmd: Command) => {
      await up(o, cmd);
    });
}
