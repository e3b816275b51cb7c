// The CLI's client of the daemon's local API. It imports nothing of the
// daemon or engine, so commands start fast and cannot reach past the API.
import { type IncomingHttpHeaders, request } from 'node:http';
import { connect } from 'node:net';
import { ApiError, type ApiErrorBody } from './types.js';

export class DaemonNotRunning extends Error {
  override readonly name = 'DaemonNotRunning';
  readonly code = 'NOT_RUNNING';
}

export class LocalClient {
  constructor(readonly socketPath: string) {}

  private raw(
    method: string,
    path: string,
    body: unknown,
    onLine?: (line: unknown) => void,
    asText?: (text: string, headers: IncomingHttpHeaders) => unknown,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      // our own connection, no Agent: the Agent's server-name check compiles Node's IPv6
      // regex on first use, 18 ms of every `meshctl status` (docs/performance.md)
      const createConnection = (): ReturnType<typeof connect> => connect(this.socketPath);
      const req = request({ createConnection, method, path, headers: { 'content-type': 'application/json', host: 'meshctl' } }, (res) => {
        let buf = '';
        const chunks: string[] = [];
        const lines = res.statusCode === 200 ? onLine : undefined;
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (!lines) return void chunks.push(c);
          buf += c;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (line.trim()) lines(JSON.parse(line));
          }
        });
        res.on('end', () => {
          if (lines) return resolve(undefined);
          const text = chunks.join('');
          // a 200's body as it came: the caller reads it (an error is parsed below as for any request)
          if (asText && res.statusCode === 200) return resolve(asText(text, res.headers));
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            return reject(new ApiError('FAILURE', `daemon answered ${res.statusCode} with non-JSON`));
          }
          if (res.statusCode === 200) return resolve(parsed);
          const e = (parsed as Partial<ApiErrorBody>).error;
          reject(new ApiError(e?.code ?? 'FAILURE', e?.message ?? `daemon answered ${res.statusCode}`));
        });
        res.on('error', reject);
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new DaemonNotRunning(`no daemon at ${this.socketPath}`));
        else if (err.code === 'EACCES') reject(new ApiError('PERMISSION', `cannot open ${this.socketPath}: permission denied`));
        else reject(err);
      });
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  get<T>(path: string): Promise<T> {
    return this.raw('GET', path, undefined) as Promise<T>;
  }
  /** A GET whose 200 answer is handed over as text with its headers, not parsed; an error answer throws as for get. */
  getText(path: string): Promise<{ text: string; headers: IncomingHttpHeaders }> {
    return this.raw('GET', path, undefined, undefined, (text, headers) => ({ text, headers })) as Promise<{ text: string; headers: IncomingHttpHeaders }>;
  }
  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.raw('POST', path, body) as Promise<T>;
  }
  /** A POST answered with newline-delimited JSON, each line handed to `onLine`. */
  stream(path: string, body: unknown, onLine: (line: unknown) => void): Promise<void> {
    return this.raw('POST', path, body, onLine) as Promise<void>;
  }
}
