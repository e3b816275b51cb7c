// One HTTP exchange for the server targets: status, body text, and for a
// streaming 200 (the control map, the local API's `up`) the first line only,
// then the connection is dropped so the stream ends.
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';

export interface Answer {
  status: number;
  body: string;
}

/** Bodies are read at most this far: answers to fuzz inputs are short; a longer one is cut, not buffered. */
const MAX_ANSWER_BYTES = 256 * 1024;

type Options = RequestOptions & { tls?: boolean; rejectUnauthorized?: boolean; body?: Buffer | string; streaming?: (res: IncomingMessage) => boolean };

/**
 * A request on a kept-alive connection can meet the server closing it; as
 * Node's documentation advises, that one is sent again on a fresh connection
 * (so a drop there is the server's doing).
 */
export function exchangeHttp(o: Options): Promise<Answer> {
  return once(o).catch((err: NodeJS.ErrnoException & { reused?: boolean }) => {
    if (err.reused && err.code === 'ECONNRESET') return once({ ...o, agent: false });
    throw err;
  });
}

function once(o: Options): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const send = o.tls ? httpsRequest : httpRequest;
    const req = send(o, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const stream = o.streaming?.(res) ?? false;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_ANSWER_BYTES) chunks.push(c);
        // a stream answers with lines: the whole of the last one is enough
        if (stream && Buffer.concat(chunks).includes(10)) {
          res.destroy();
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', (err: NodeJS.ErrnoException & { reused?: boolean }) => {
      err.reused = req.reusedSocket;
      reject(err);
    });
    req.end(o.body);
  });
}

export function keepAliveTlsAgent(): HttpsAgent {
  return new HttpsAgent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
}
