// Small HTTP helpers shared by the control server's HTTPS and admin sides.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ControlError, HTTP_STATUS, type ErrorBody } from './protocol.js';

const MAX_BODY_BYTES = 64 * 1024;

export function readJson(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        reject(new ControlError('BAD_REQUEST', `body larger than ${maxBytes} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (size === 0) return resolve({});
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new ControlError('BAD_REQUEST', 'body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

/**
 * A request refused for its rate: answered 429 with Retry-After. Its body is
 * left unread (Node discards it to keep the connection), and the connection is
 * kept: closing it would make the sender's next try cost a TLS handshake, and
 * closing with unread data can reset the connection before the answer is read.
 */
export class RateLimitedError extends ControlError {
  constructor(
    message: string,
    readonly retryAfterSec: number,
  ) {
    super('RATE_LIMITED', message);
  }
}

export function sendError(res: ServerResponse, err: unknown): void {
  const e = err instanceof ControlError ? err : new ControlError('INTERNAL', (err as Error)?.message ?? String(err));
  const body: ErrorBody = { error: { code: e.code, message: e.message } };
  const headers: Record<string, string> = e instanceof RateLimitedError ? { 'retry-after': String(e.retryAfterSec) } : {};
  if (!res.headersSent) sendJson(res, HTTP_STATUS[e.code], body, headers);
  else res.destroy();
}
