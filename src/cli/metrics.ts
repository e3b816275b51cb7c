// `meshctl metrics` (the daemon's Prometheus exposition through the local API)
// and the --metrics-listen / --metrics-allow-remote options that `up`,
// `daemon`, `control serve` and `relay serve` share (docs/metrics.md).
import { type Command, Option } from 'commander';
import { LOCALAPI, type MetricsResponse } from '../localapi/types.js';
import { clientOf, serveUntilSignal, socketOf } from './context.js';
import { CliError, fromApi } from './errors.js';
import { parseMetricsListen, startMetricsServer, type MetricsListen, type MetricsSource } from '../util/metrics-http.js';
import { isoTime } from '../util/time.js';

export interface MetricsOpts {
  metricsListen?: string;
  metricsAllowRemote?: boolean;
}

/** --metrics-listen for a command that runs a server (`what`: whose metrics). */
export function metricsListenOption(what: string): Option {
  return new Option('--metrics-listen <ip:port>', `serve ${what}'s Prometheus metrics at http://IP:PORT/metrics (loopback only unless --metrics-allow-remote)`);
}

export function metricsAllowRemoteOption(): Option {
  return new Option('--metrics-allow-remote', 'allow a non-loopback --metrics-listen address (the endpoint has no authentication)');
}

/** The parsed --metrics-listen, or null when not given; a bad or non-loopback address is a usage error. */
export function metricsListenOf(o: MetricsOpts): MetricsListen | null {
  if (o.metricsListen === undefined) {
    if (o.metricsAllowRemote) throw new CliError('USAGE', '--metrics-allow-remote goes with --metrics-listen IP:PORT');
    return null;
  }
  try {
    return parseMetricsListen(o.metricsListen, o.metricsAllowRemote === true);
  } catch (err) {
    throw new CliError('USAGE', (err as Error).message);
  }
}

/**
 * Starts the scrape endpoint of a server that is running (when asked for), then keeps both until SIGTERM/SIGINT.
 * An endpoint that cannot listen stops the server too: a monitored server that is not monitored is a failure to see.
 */
export async function serveWithMetrics(
  server: { stop(): Promise<void> },
  metrics: { listen: MetricsListen; source: MetricsSource } | null,
  who: string,
): Promise<never> {
  if (!metrics) return serveUntilSignal(server);
  const log = (m: string): void => void process.stderr.write(`${isoTime()} ${who}: ${m}\n`);
  const { listen, source } = metrics;
  let endpoint;
  try {
    endpoint = await startMetricsServer(listen, source, { logger: log });
  } catch (err) {
    await server.stop();
    throw new CliError('FAILURE', `${who}: --metrics-listen ${listen.host}:${listen.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  log(`metrics on http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${endpoint.port}/metrics`);
  return serveUntilSignal({ stop: async () => (await endpoint.close(), await server.stop()) });
}

export function registerMetrics(program: Command): void {
  program
    .command('metrics')
    .description("print the daemon's Prometheus metrics (the text its --metrics-listen endpoint serves)")
    .action(async (_o: unknown, cmd: Command) => {
      let r: MetricsResponse;
      try {
        r = await clientOf(cmd).get<MetricsResponse>(LOCALAPI.metrics);
      } catch (err) {
        throw fromApi(err, socketOf(cmd));
      }
      if (typeof r?.text !== 'string') throw new CliError('FAILURE', 'the daemon sent no metrics text: is it older than this CLI? restart it');
      process.stdout.write(r.text);
    });
}
