// The daemon's local API: HTTP on a unix socket that anyone may open (mode
// 0666) to read status; changing state needs root, the daemon's own uid or
// the configured operator, checked with the kernel's SO_PEERCRED. Requests
// carrying Origin or Referer come from a browser and are refused (CSRF).
import { mkdirSync, readFileSync } from '../util/cjs.js';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { closeUnix, listenUnix } from '../util/unix-http.js';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { ApiError, LOCALAPI, type ApiErrorBody, type ApiErrorCode, type PingRequest, type PrefsRequest, type UpLine, type UpRequest } from '../localapi/types.js';
import type { Backend } from './backend.js';
import { peerCred } from './peercred.js';

const STATUS: Record<ApiErrorCode, number> = { BAD_REQUEST: 400, PERMISSION: 403, NOT_FOUND: 404, UNREACHABLE: 502, AUTH: 401, TIMEOUT: 504, NOT_RUNNING: 409, FAILURE: 500 };
const MAX_BODY_BYTES = 256 * 1024;
const MAX_PING_TIMEOUT_MS = 60_000;

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

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

function errorBody(err: unknown): { status: number; body: ApiErrorBody } {
  const e = err instanceof ApiError ? err : new ApiError('FAILURE', (err as Error)?.message ?? String(err));
  return { status: STATUS[e.code], body: { error: { code: e.code, message: e.message } } };
}

async function readBody<T>(req: IncomingMessage): Promise<T> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError('BAD_REQUEST', 'request body too large');
    chunks.push(c as Buffer);
  }
  if (size === 0) return {} as T;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  } catch {
    throw new ApiError('BAD_REQUEST', 'request body is not JSON');
  }
}

export class LocalApiServer {
  private server: Server | null = null;

  constructor(private readonly path: string, private readonly backend: Backend) {}

  /** Refuses to start over a socket another daemon still answers on. */
  async start(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o755 });
    const live = await new Promise<boolean>((resolve) => {
      const s = connect(this.path);
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (live) throw new Error(`another meshctl daemon is running on ${this.path}: stop it, or pass another --socket`);
    this.server = await listenUnix(this.path, 0o666, (req, res) => void this.handle(req, res));
  }

  async stop(): Promise<void> {
    await closeUnix(this.server, this.path);
    this.server = null;
  }

  private mayWrite(req: IncomingMessage): void {
    const cred = peerCred(req.socket);
    if (cred && (cred.uid === 0 || cred.uid === process.getuid?.())) return;
    const op = this.backend.operator();
    if (cred && op !== null && uidOfUser(op) === cred.uid) return;
    throw new ApiError('PERMISSION', `changing the node needs root or its operator: use 'sudo meshctl …', or have root run 'meshctl set --operator=${cred ? `$USER` : 'USER'}'`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.headers.origin || req.headers.referer) throw new ApiError('PERMISSION', 'requests from web pages are refused');
      const url = new URL(req.url ?? '/', 'http://local');
      const route = `${req.method} ${url.pathname}`;
      switch (route) {
        case `GET ${LOCALAPI.status}`:
          return sendJson(res, 200, this.backend.status());
        case `GET ${LOCALAPI.netcheck}`:
          return sendJson(res, 200, await this.backend.netcheckReport());
        case `GET ${LOCALAPI.whois}`:
          return sendJson(res, 200, this.backend.whois(url.searchParams.get('ip') ?? ''));
        case `POST ${LOCALAPI.ping}`: {
          const b = await readBody<PingRequest>(req);
          if (typeof b.peer !== 'string' || !b.peer) throw new ApiError('BAD_REQUEST', 'ping needs a peer');
          const t = Math.min(MAX_PING_TIMEOUT_MS, Math.max(1, Number(b.timeoutMs) || 5000));
          return sendJson(res, 200, await this.backend.ping(b.peer, t));
        }
        case `POST ${LOCALAPI.up}`:
          this.mayWrite(req);
          return await this.up(await readBody<UpRequest>(req), res);
        case `POST ${LOCALAPI.down}`:
          this.mayWrite(req);
          await this.backend.down();
          return sendJson(res, 200, this.backend.status());
        case `POST ${LOCALAPI.logout}`:
          this.mayWrite(req);
          await this.backend.logout();
          return sendJson(res, 200, this.backend.status());
        case `POST ${LOCALAPI.prefs}`:
          this.mayWrite(req);
          this.backend.setPrefs(await readBody<PrefsRequest>(req));
          return sendJson(res, 200, this.backend.status());
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
