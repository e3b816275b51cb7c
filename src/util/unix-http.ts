// HTTP servers on unix sockets (the daemon's local API, the control server's
// admin socket): listen with a given mode, and close removing the socket file.
// Optionally: a gate that sees every accepted connection before HTTP does
// (connection caps), timeouts for clients that connect and send nothing, and a
// handler for accept failures, which never escape as an uncaught exception.
import { chmodSync, rmSync } from './cjs.js';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { rateLimitedLog } from './rate-limited-log.js';

/** One line per minute about failing accepts is enough to tell the operator; more would flood the log while fds are short. */
const ACCEPT_ERROR_LOG_INTERVAL_MS = 60_000;
/** How often Node checks the request timeout, as a share of it: the timeout then fires within 1.2 times its value. */
const TIMEOUT_CHECKS_PER_PERIOD = 5;

export interface UnixHttpOptions {
  /**
   * A connection must send a whole request (headers and body) within this long of connecting,
   * or of the first byte of its next request on a kept-alive connection; else it gets a 408 and is closed.
   * A response being written is never cut by it. Node's defaults (60 s, 300 s) apply when unset.
   */
  requestTimeoutMs?: number;
  /** A kept-alive connection that sends nothing for this long after a response is closed (Node's default: 5 s). */
  keepAliveTimeoutMs?: number;
  /**
   * Sees each accepted connection before HTTP does: null admits it, a string refuses it: the string is
   * written to the socket (a whole HTTP response) and the socket is closed at once.
   */
  admit?: (sock: Socket) => string | null;
  /** Accept failures (EMFILE, ENFILE, ...): the server keeps listening. Default: one line a minute on stderr. */
  onAcceptError?: (err: NodeJS.ErrnoException) => void;
}

export async function listenUnix(path: string, mode: number, handler: RequestListener, opts: UnixHttpOptions = {}): Promise<Server> {
  rmSync(path, { force: true });
  const t = opts.requestTimeoutMs;
  // no Date header: a local client has the time, and formatting it maps ~0.4 MB of ICU
  // time-zone data into the daemon (docs/performance.md, "Idle memory")
  const server = createServer(t ? { connectionsCheckingInterval: Math.max(1, Math.floor(t / TIMEOUT_CHECKS_PER_PERIOD)) } : {}, (req, res) => {
    res.sendDate = false;
    handler(req, res);
  });
  if (t) {
    server.headersTimeout = t;
    server.requestTimeout = t;
  }
  if (opts.keepAliveTimeoutMs) server.keepAliveTimeout = opts.keepAliveTimeoutMs;
  const admit = opts.admit;
  if (admit) {
    // before http's own listener, so a refused socket is closed before anything reads from it
    server.prependListener('connection', (sock: Socket) => {
      const refusal = admit(sock);
      if (refusal === null) return;
      // a unix socket takes a short write into its kernel buffer at once; the fd is closed now
      sock.on('error', () => {});
      sock.write(refusal);
      sock.destroy();
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // after listen, 'error' is a failed accept (libuv has already closed the connection it could not take)
  const onAcceptError =
    opts.onAcceptError ??
    (
      (log) => (err: NodeJS.ErrnoException) =>
        log(`${path}: accept failed: ${err.code ?? err.message}; still listening`)
    )(rateLimitedLog((m) => process.stderr.write(`${m}\n`), ACCEPT_ERROR_LOG_INTERVAL_MS));
  server.on('error', onAcceptError);
  chmodSync(path, mode);
  return server;
}

export async function closeUnix(server: Server | null, path: string): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(path, { force: true });
}
