// The admin page's files: one HTML page and the bundle and style sheet built
// by scripts/bundle.mjs into dist/src/control/web/assets/. Served from the
// package (no CDN), under a Content-Security-Policy that allows only this
// origin's script and style: no inline script or style, no framing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync, readFileSync } from '../../util/cjs.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlError } from '../protocol.js';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // the QR code of a new key is an SVG data: URL image
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Sent with every response under /admin. */
export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meshctl admin</title>
<link rel="stylesheet" href="/admin/assets/admin.css">
<script type="module" src="/admin/assets/admin.js"></script>
</head>
<body>
<div id="app"><main><p>Loading the admin page…</p><noscript>The admin page needs JavaScript; the same operations are in <code>meshctl control</code>.</noscript></main></div>
</body>
</html>
`;

const ASSETS: Record<string, string> = {
  'admin.js': 'text/javascript; charset=utf-8',
  'admin.css': 'text/css; charset=utf-8',
};

/**
 * Where the built assets are: next to this module, or (when it runs from the
 * CLI bundle in dist/src/cli/) in ../control/web/assets.
 */
function assetsDir(): string | null {
  for (const rel of ['./assets/', '../control/web/assets/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'admin.js'))) return dir;
  }
  return null;
}

/** The files, read once (they change only with a new build). */
const cache = new Map<string, Buffer>();

export function serveStatic(req: IncomingMessage, res: ServerResponse, path: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new ControlError('BAD_REQUEST', 'the admin page is read with GET');
  if (path === '/admin') {
    res.writeHead(308, { location: '/admin/' });
    return void res.end();
  }
  if (path === '/admin/') return send(res, req, 'text/html; charset=utf-8', Buffer.from(INDEX_HTML), 'no-store');
  const m = /^\/admin\/assets\/([a-z]+\.(?:js|css))$/.exec(path);
  const type = m ? ASSETS[m[1]!] : undefined;
  if (!m || !type) throw new ControlError('NOT_FOUND', 'no such page: the admin page is at /admin/');
  let data = cache.get(m[1]!);
  if (!data) {
    const dir = assetsDir();
    if (!dir) throw new ControlError('NOT_FOUND', 'the admin page is not built: run `npm run build`');
    data = readFileSync(join(dir, m[1]!));
    cache.set(m[1]!, data);
  }
  send(res, req, type, data, 'no-cache');
}

function send(res: ServerResponse, req: IncomingMessage, type: string, data: Buffer, cacheControl: string): void {
  res.writeHead(200, { 'content-type': type, 'content-length': data.length, 'cache-control': cacheControl });
  res.end(req.method === 'HEAD' ? undefined : data);
}
