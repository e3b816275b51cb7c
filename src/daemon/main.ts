// The node daemon's process: state dir lock, local API socket, the backend,
// and an orderly shutdown on SIGTERM/SIGINT (the interface goes away, the
// node's wish to be up is kept so the next start resumes).
import { sdNotify, statusLine } from '../util/sd-notify.js';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from '../util/cjs.js';
import { join } from 'node:path';
import { Backend } from './backend.js';
import { LocalApiServer } from './localapi-server.js';
import { daemonKnobsFromEnv } from './test-knobs.js';
import { isoTime } from '../util/time.js';
import { fixMmapThreshold } from '../util/malloc-trim.js';
import { startMetricsServer, type MetricsListen, type MetricsServer } from '../util/metrics-http.js';

export interface DaemonOptions {
  socket: string;
  stateDir: string;
  ifname: string;
  port: number;
  version: string;
  /** serve Prometheus metrics on this address (--metrics-listen; loopback unless allowed when parsed) */
  metricsListen?: MetricsListen | null;
}

function log(msg: string): void {
  process.stderr.write(`${isoTime()} meshctl daemon: ${msg}\n`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // a killed daemon whose parent never reaps it stays a zombie that kill(0) still finds
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** One daemon per state dir: two would fight over the same keys. */
function lockStateDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = join(dir, 'daemon.pid');
  if (existsSync(f)) {
    const pid = Number(readFileSync(f, 'utf8'));
    if (pid && pid !== process.pid && alive(pid)) throw new Error(`another meshctl daemon (pid ${pid}) uses ${dir}: stop it, or pass another --state-dir`);
  }
  writeFileSync(f, `${process.pid}\n`, { mode: 0o644 });
  return () => rmSync(f, { force: true });
}

/** Starts the daemon; resolves once its socket answers. The process then lives until a signal. */
export async function startDaemon(o: DaemonOptions): Promise<{ stop(): Promise<void> }> {
  // big buffers (flow tables, rings) get mappings of their own, unmapped when freed, rather than holes in the brk heap
  fixMmapThreshold();
  const unlock = lockStateDir(o.stateDir);
  let backend: Backend;
  const api = (() => {
    backend = new Backend({
      stateDir: o.stateDir,
      defaults: { ifname: o.ifname, port: o.port },
      version: o.version,
      logger: log,
      knobs: daemonKnobsFromEnv(process.env),
    });
    return new LocalApiServer(o.socket, backend, { logger: log });
  })();
  try {
    await api.start();
  } catch (err) {
    unlock();
    throw err;
  }
  let metrics: MetricsServer | null = null;
  try {
    if (o.metricsListen) metrics = await startDaemonMetrics(o.metricsListen, backend!);
  } catch (err) {
    await api.stop();
    unlock();
    throw err;
  }
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log('shutting down');
      sdNotify(`STOPPING=1\n${statusLine('shutting down')}`);
      await metrics?.close();
      await api.stop();
      await backend.close();
      unlock();
    })());
  const onSignal = (): void => void stop().then(() => process.exit(0));
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // a bug in one request must not take every tunnel down with it
  process.on('uncaughtException', (err) => log(`internal error: ${err.stack ?? err.message}`));
  log(`listening on ${o.socket}, state in ${o.stateDir}`);
  await backend!.resume();
  // systemd (Type=notify) starts what depends on the node once the local API answers and the node is resumed
  sdNotify(`READY=1\n${statusLine(`local API on ${o.socket}`)}`);
  return { stop };
}

/** The scrape endpoint; prom-client and the metrics module load only here, when --metrics-listen asks for them. */
async function startDaemonMetrics(listen: MetricsListen, backend: Backend): Promise<MetricsServer> {
  const { daemonMetrics } = await import('./metrics.js');
  let server: MetricsServer;
  try {
    server = await startMetricsServer(
      listen,
      daemonMetrics(() => backend.metricsView()),
      { logger: log },
    );
  } catch (err) {
    throw new Error(`--metrics-listen ${listen.host}:${listen.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  log(`metrics on http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${server.port}/metrics`);
  return server;
}
