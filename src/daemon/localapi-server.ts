// The daemon's local API: HTTP on a unix socket that anyone may open (mode
// 0666) to read status; changing state needs root, the daemon's own uid or
// the configured operator, checked with the kernel's SO_PEERCRED. Choosing
// which control server the node trusts (login server, its CA, the operator)
// is root's alone: that server decides the addresses and routes the daemon
// installs as root. Requests carrying Origin or Referer come from a browser
// and are refused (CSRF). Connections are capped per uid with a reserve for
// root (localapi-conns.ts), and one that sends no whole request in time is closed.
import { mkdirSync, readFileSync } from '../util/cjs.js';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { closeUnix, listenUnix } from '../util/unix-http.js';
import { rateLimitedLog } from '../util/rate-limited-log.js';
import { isPrintable, terminalSafe } from '../util/text.js';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { DaemonMetrics } from './metrics.js';
import {
  ApiError,
  LOCALAPI,
  STATUS_FORMAT_HEADER,
  type ApiErrorBody,
  type MetricsResponse,
  type ApiErrorCode,
  type UpLine,
  type UpRequest,
} from '../localapi/types.js';
import type { Backend } from './backend.js';
import { ConnectionGate, type ConnLimits } from './localapi-conns.js';
import { parseDnsQueryRequest, parsePingRequest, parsePrefsRequest, parseUpRequest } from './localapi-requests.js';
import { peerCred } from './peercred.js';

const STATUS: Record<ApiErrorCode, number> = {
  BAD_REQUEST: 400,
  PERMISSION: 403,
  NOT_FOUND: 404,
  UNREACHABLE: 502,
  AUTH: 401,
  TIMEOUT: 504,
  NOT_RUNNING: 409,
  FAILURE: 500,
};
/** The largest body is `up` with a CA chain (MAX_CA_PEM_CHARS, 64 KiB); 256 KiB leaves room and bounds what a user makes us buffer. */
const MAX_BODY_BYTES = 256 * 1024;
/**
 * A client must send its whole request within 10 s of connecting (or of starting its next request on a kept-alive
 * connection). The CLI sends it in the same millisecond, so only a stuck or hostile client ever waits this long, and
 * a user who holds connections open gets each one closed after 10 s. Responses being written (the `up` progress
 * stream, a ping) are not limited by it.
 */
export const LOCALAPI_REQUEST_TIMEOUT_MS = 10_000;
/** A kept-alive connection idle this long after a response is closed; the CLI uses one connection per request. */
export const LOCALAPI_KEEPALIVE_TIMEOUT_MS = 5000;
/** The longest IPv6 text with a zone is well under 64 characters. */
const MAX_IP_TEXT_CHARS = 64;
/** Refused connections and full fd tables are logged at most once a minute each, so a flood cannot flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/** What the local API needs of the backend (the real one is Backend; tests pass a double). */
export type LocalApiBackend = Pick<
  Backend,
  | 'status'
  | 'netcheckReport'
  | 'whois'
  | 'ping'
  | 'up'
  | 'down'
  | 'logout'
  | 'setPrefs'
  | 'operator'
  | 'controlTrust'
  | 'dnsStatus'
  | 'dnsQuery'
  | 'metricsView'
> &
  // the status as text, cheaper than JSON.stringify(status()) at thousands of peers; a double without it gets that
  Partial<Pick<Backend, 'statusJsonPieces'>>;

export interface LocalApiOptions {
  /** connection caps (localapi-conns.ts) */
  limits?: Partial<ConnLimits>;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** where refusals and accept failures are reported, one line each */
  logger?: (msg: string) => void;
}

/** Who is writing: root or the daemon's own uid may do anything; the operator may not change whom the node trusts. */
type Writer = 'root' | 'operator';

function uidOfUser(name: string): number | null {
  if (/^\d+$/.test(name)) return Number(name);
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name) return Number(f[2]);
    }
  } catch {
    /* no passwd file: only numeric operators work */
  }
  return null;
}

/** PEM text compared as the certificate it holds would be: line endings and surrounding white space do not count. */
function pemText(pem: string): string {
  return pem.replace(/\r\n/g, '\n').trim();
}

/** The whole HTTP answer written to a connection refused at accept, so the CLI can show why. */
function refusal(why: string): string {
  const body = JSON.stringify({ error: { code: 'FAILURE', message: why } } satisfies ApiErrorBody);
  return `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

function errorBody(err: unknown): { status: number; body: ApiErrorBody } {
  const e = err instanceof ApiError ? err : new ApiError('FAILURE', (err as Error)?.message ?? String(err));
  return { status: STATUS[e.code], body: { error: { code: e.code, message: e.message } } };
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError('BAD_REQUEST', 'request body too large');
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new ApiError('BAD_REQUEST', 'request body is not JSON');
  }
}

export class LocalApiServer {
  private server: Server | null = null;
  private readonly gate: ConnectionGate;
  private readonly log: (msg: string) => void;
  /** made on the first `meshctl metrics` (metrics.ts loads prom-client) */
  private metrics: Promise<DaemonMetrics> | null = null;

  constructor(
    private readonly path: string,
    private readonly backend: LocalApiBackend,
    private readonly opts: LocalApiOptions = {},
  ) {
    this.log = opts.logger ?? ((m) => process.stderr.write(`${m}\n`));
    const refused = rateLimitedLog(this.log, REFUSAL_LOG_INTERVAL_MS);
    this.gate = new ConnectionGate(opts.limits, undefined, (_uid, why) => refused(`local API connection refused: ${why}`));
  }

  /** Refuses to start over a socket another daemon still answers on. */
  async start(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o755 });
    const live = await new Promise<boolean>((resolve) => {
      const s = connect(this.path);
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (live) throw new Error(`another meshctl daemon is running on ${this.path}: stop it, or pass another --socket`);
    const acceptFailed = rateLimitedLog(this.log, REFUSAL_LOG_INTERVAL_MS);
    this.server = await listenUnix(this.path, 0o666, (req, res) => void this.handle(req, res), {
      requestTimeoutMs: this.opts.requestTimeoutMs ?? LOCALAPI_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: this.opts.keepAliveTimeoutMs ?? LOCALAPI_KEEPALIVE_TIMEOUT_MS,
      admit: (sock) => {
        const why = this.gate.admit(sock);
        return why === null ? null : refusal(why);
      },
      // EMFILE/ENFILE: libuv has already closed the connection it could not take; the socket keeps listening
      onAcceptError: (err) => acceptFailed(`local API: accept failed (${err.code ?? err.message}): the daemon is out of file descriptors; still serving`),
    });
  }

  async stop(): Promise<void> {
    await closeUnix(this.server, this.path);
    this.server = null;
  }

  private mayWrite(req: IncomingMessage): Writer {
    const cred = peerCred(req.socket);
    if (cred && (cred.uid === 0 || cred.uid === process.getuid?.())) return 'root';
    const op = this.backend.operator();
    if (cred && op !== null && uidOfUser(op) === cred.uid) return 'operator';
    throw new ApiError(
      'PERMISSION',
      `changing the node needs root or its operator: use 'sudo meshctl …', or have root run 'meshctl set --operator=${cred ? `$USER` : 'USER'}'`,
    );
  }

  /**
   * The operator may bring the node up with the control server it already uses, never point it at another one or
   * trust another certificate for it: that server hands out the addresses and routes the daemon installs as root.
   */
  private checkTrust(who: Writer, r: UpRequest): void {
    if (who === 'root') return;
    const now = this.backend.controlTrust();
    if (r.loginServer !== undefined && r.loginServer !== now.loginServer) {
      throw new ApiError('PERMISSION', `switching the login server needs root: sudo meshctl up --login-server ${terminalSafe(r.loginServer, 200)}`);
    }
    if (r.loginServers !== undefined && JSON.stringify(r.loginServers) !== JSON.stringify(now.loginServers ?? [now.loginServer])) {
      throw new ApiError('PERMISSION', 'changing the login servers needs root: sudo meshctl up --login-server URL --login-server URL');
    }
    if (r.controlCaPem !== undefined && pemText(r.controlCaPem) !== pemText(now.controlCaPem ?? '')) {
      const url = terminalSafe(now.loginServer ?? 'URL', 200);
      throw new ApiError(
        'PERMISSION',
        `trusting another certificate for the login server needs root: sudo meshctl up --login-server ${url} --control-ca PEMFILE`,
      );
    }
    if (r.controlPin !== undefined && r.controlPin !== now.controlPin) {
      throw new ApiError('PERMISSION', 'trusting another public key for the login server needs root: sudo meshctl up --join-file FILE');
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.headers.origin || req.headers.referer) throw new ApiError('PERMISSION', 'requests from web pages are refused');
      const url = new URL(req.url ?? '/', 'http://local');
      const route = `${req.method} ${url.pathname}`;
      switch (route) {
        case `GET ${LOCALAPI.status}`: {
          // ?format=pretty: the text `status --json` prints (JSON.stringify(status, null, 2)), so the CLI need not parse it
          const pretty = url.searchParams.get('format') === 'pretty';
          // in pieces, written one after another: the whole text at thousands of peers is megabytes (see statusJsonPieces)
          const pieces = this.backend.statusJsonPieces?.(pretty) ?? [JSON.stringify(this.backend.status(), null, pretty ? 2 : undefined)];
          const headers = { 'content-type': 'application/json', 'content-length': pieces.reduce((n, p) => n + Buffer.byteLength(p), 0) };
          res.writeHead(200, pretty ? { ...headers, [STATUS_FORMAT_HEADER]: 'pretty' } : headers);
          res.cork();
          for (const p of pieces) res.write(p);
          res.uncork();
          return void res.end();
        }
        case `GET ${LOCALAPI.netcheck}`:
          return sendJson(res, 200, await this.backend.netcheckReport());
        case `GET ${LOCALAPI.whois}`: {
          const ip = url.searchParams.get('ip') ?? '';
          // the backend names a bad address in its error: keep it one printable line
          if (!isPrintable(ip, MAX_IP_TEXT_CHARS)) throw new ApiError('BAD_REQUEST', 'whois needs an IP address: meshctl whois IP');
          return sendJson(res, 200, this.backend.whois(ip));
        }
        case `POST ${LOCALAPI.ping}`: {
          const b = parsePingRequest(await readBody(req));
          return sendJson(res, 200, await this.backend.ping(b.peer, b.timeoutMs));
        }
        case `POST ${LOCALAPI.up}`: {
          const who = this.mayWrite(req);
          const b = parseUpRequest(await readBody(req));
          this.checkTrust(who, b);
          return await this.up(b, res);
        }
        case `POST ${LOCALAPI.down}`:
          this.mayWrite(req);
          await this.backend.down();
          return sendJson(res, 200, this.backend.status());
        case `POST ${LOCALAPI.logout}`:
          this.mayWrite(req);
          await this.backend.logout();
          return sendJson(res, 200, this.backend.status());
        case `POST ${LOCALAPI.prefs}`: {
          const who = this.mayWrite(req);
          const b = parsePrefsRequest(await readBody(req));
          // naming the operator hands out write access: only root may
          if (b.operator !== undefined && who !== 'root') throw new ApiError('PERMISSION', 'naming the operator needs root: sudo meshctl set --operator=USER');
          await this.backend.setPrefs(b);
          return sendJson(res, 200, this.backend.status());
        }
        case `GET ${LOCALAPI.dnsStatus}`:
          return sendJson(res, 200, this.backend.dnsStatus());
        case `POST ${LOCALAPI.dnsQuery}`: {
          // reading, like status: anyone who may open the socket may ask (they could ask 100.100.100.100 themselves)
          const b = parseDnsQueryRequest(await readBody(req));
          return sendJson(res, 200, await this.backend.dnsQuery(b.name, b.type));
        }
        case `GET ${LOCALAPI.metrics}`: {
          // reading, like status: the same figures the --metrics-listen endpoint serves
          this.metrics ??= import('./metrics.js').then((m) => m.daemonMetrics(() => this.backend.metricsView()));
          const m = await this.metrics;
          return sendJson(res, 200, { contentType: m.contentType, text: await m.metrics() } satisfies MetricsResponse);
        }
        default:
          throw new ApiError('NOT_FOUND', `no ${route} in the local API`);
      }
    } catch (err) {
      const { status, body } = errorBody(err);
      if (!res.headersSent) sendJson(res, status, body);
      else res.end(JSON.stringify({ type: 'error', error: body.error } satisfies UpLine) + '\n');
    }
  }

  /** `up` streams progress lines so the CLI can show them while it waits. */
  private async up(body: UpRequest, res: ServerResponse): Promise<void> {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const write = (l: UpLine): boolean => res.write(JSON.stringify(l) + '\n');
    const status = await this.backend.up(body, (message) => write({ type: 'progress', message }));
    res.end(JSON.stringify({ type: 'done', status } satisfies UpLine) + '\n');
  }
}
