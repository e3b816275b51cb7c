// A client of the admin web for tests: HTTPS requests with headers (a Bearer
// token, a cookie, a CSRF token), answered with status, headers and JSON.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request } from 'node:https';
import type { Harness } from './helpers.js';
import { Node, openStream, registerBody, type OpenStream } from './helpers.js';

export interface WebReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown> & { error?: { code: string; message: string } };
  text: string;
}

export function web(h: Harness, method: string, path: string, o: { headers?: Record<string, string>; body?: unknown; port?: number } = {}): Promise<WebReply> {
  const base = o.port ? `https://127.0.0.1:${o.port}` : h.url;
  return new Promise((resolve, reject) => {
    const data = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    const headers = { ...(data ? { 'content-type': 'application/json' } : {}), ...o.headers };
    const req = request(`${base}${path}`, { method, ca: h.server.certPem, agent: false, headers }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: WebReply['body'] = {};
        try {
          body = JSON.parse(text) as WebReply['body'];
        } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** Registers a node with `key` and opens its map stream: it is online while the stream is open. */
export async function joinNode(h: Harness, key: string, name: string): Promise<{ node: Node; stream: OpenStream }> {
  const node = new Node(h.server.publicKey!);
  const r = await web(h, 'POST', '/meshctl/v1/register', { body: node.seal('register', registerBody(key, name)) });
  if (r.status !== 200) throw new Error(`register ${name}: HTTP ${r.status} ${r.text}`);
  return { node, stream: await openStream(h, node) };
}
