// The Prometheus scrape endpoint each component (daemon, control, relay) may
// open with --metrics-listen: plain HTTP on one address, answering only
// `GET /metrics` (404 otherwise), with a connection cap and timeouts so a
// client that opens many connections or sends slowly costs a bounded amount.
// The address is loopback unless the caller explicitly allows another one:
// the figures say how busy a node is and which paths it uses, and the
// endpoint has no authentication (put it behind a firewall or a proxy).
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { AddressSyntaxError, parseIpEndpoint, type IpAddress } from './netaddr.js';

/** A scraper keeps one connection; 16 leaves room for a few Prometheus servers and a curl, and bounds sockets a client can hold. */
export const METRICS_MAX_CONNECTIONS = 16;
/** The whole request (a GET without body) must arrive within 5 s; only a stuck or hostile client is slower. */
export const METRICS_REQUEST_TIMEOUT_MS = 5000;
/** Prometheus scrapes every 15 s by default and reuses its connection: keep an idle one a little longer than that. */
export const METRICS_KEEPALIVE_TIMEOUT_MS = 20_000;
/** Request headers are small (a scraper sends ~200 bytes); 8 KiB refuses more before it is buffered. */
export const METRICS_MAX_HEADER_BYTES = 8192;

export const METRICS_PATH = '/metrics';

/** What serves the text exposition: a prom-client Registry has this shape. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface MetricsListen {
  host: string;
  port: number;
}

export interface MetricsServerOptions {
  maxConnections?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  logger?: (msg: string) => void;
}

function isLoopback(a: IpAddress): boolean {
  return a.family === 4 ? a.text.startsWith('127.') : a.text === '::1';
}

/**
 * `IP:PORT` or `[IPv6]:PORT` for --metrics-listen; port 0 takes any free port. A non-loopback address is refused
 * unless `allowRemote` (the --metrics-allow-remote flag): the endpoint has no authentication.
 */
export function parseMetricsListen(text: string, allowRemote: boolean, flag = '--metrics-listen'): MetricsListen {
  // parseIpEndpoint takes ports 1-65535; 0 (any free port) is accepted here by parsing the text with port 1
  const anyPort = /:0$/.test(text);
  let ep;
  try {
    ep = parseIpEndpoint(anyPort ? `${text.slice(0, -1)}1` : text);
  } catch (err) {
    if (!(err instanceof AddressSyntaxError)) throw err;
    throw new Error(`${flag} ${JSON.stringify(text.slice(0, 80))}: expected IP:PORT, e.g. 127.0.0.1:9101 or [::1]:9101 (no host names)`);
  }
  if (!isLoopback(ep.address) && !allowRemote) {
    throw new Error(
      `${flag} ${ep.text}: not a loopback address; the metrics endpoint has no authentication, so add --metrics-allow-remote to serve it on ${ep.address.text}`,
    );
  }
  return { host: ep.address.text, port: anyPort ? 0 : ep.port };
}

export interface MetricsServer {
  /** the bound port (the one asked for, or the free one port 0 took) */
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the scrape endpoint; rejects when the address cannot be bound (in use, not local). */
export async function startMetricsServer(listen: MetricsListen, source: MetricsSource, opts: MetricsServerOptions = {}): Promise<MetricsServer> {
  const log = opts.logger ?? (() => {});
  const server: Server = createServer(
    {
      requestTimeout: opts.requestTimeoutMs ?? METRICS_REQUEST_TIMEOUT_MS,
      headersTimeout: opts.requestTimeoutMs ?? METRICS_REQUEST_TIMEOUT_MS,
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? METRICS_KEEPALIVE_TIMEOUT_MS,
      maxHeaderSize: METRICS_MAX_HEADER_BYTES,
      // Node checks the request timeout this often (default 30 s, which would let a held connection live 6 times longer)
      connectionsCheckingInterval: Math.min(1000, opts.requestTimeoutMs ?? METRICS_REQUEST_TIMEOUT_MS),
    },
    (req, res) => {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      if (req.method !== 'GET' || path !== METRICS_PATH) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('not found: only GET /metrics is served here\n');
        return;
      }
      source.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': source.contentType, 'content-length': Buffer.byteLength(body) });
          res.end(body);
        },
        (err: Error) => {
          // the detail goes to the log, not to whoever scrapes
          log(`metrics: collecting failed: ${err.message}`);
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('collecting the metrics failed: see the log\n');
        },
      );
    },
  );
  // connections beyond the cap are closed by Node at accept
  server.maxConnections = opts.maxConnections ?? METRICS_MAX_CONNECTIONS;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, s: Socket) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listen.host, port: listen.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log(`metrics: ${err.message}`));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : listen.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
