// `--admin-listen ADDR`: the admin web alone on a listener of its own (e.g. a
// loopback or management-network address), over HTTPS with the control
// server's certificate. Anything outside /admin is not found there.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseIp } from '../../util/netaddr.js';
import { guardConnections, type ConnectionLimits } from '../connections.js';
import { sendJson } from '../http-util.js';
import { ControlError } from '../protocol.js';
import type { AdminWeb } from './api.js';

export async function listenAdminWeb(
  addr: { address: string; port: number },
  tls: { cert: string; key: string },
  web: AdminWeb,
  limits: ConnectionLimits,
): Promise<Server> {
  let ip;
  try {
    ip = parseIp(addr.address);
  } catch {
    throw new ControlError('BAD_REQUEST', `--admin-listen: ${JSON.stringify(addr.address)} is not an IP address, e.g. 127.0.0.1 or ::1`);
  }
  const server = createServer({ ...tls, headersTimeout: limits.idleMs, requestTimeout: 30_000 }, (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/') {
      res.writeHead(308, { location: '/admin/' });
      return void res.end();
    }
    if (!(path === '/admin' || path.startsWith('/admin/')))
      return sendJson(res, 404, { error: { code: 'NOT_FOUND', message: 'the admin page is at /admin/' } });
    void web.handle(req, res);
  });
  guardConnections(server, limits);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen on ${ip.text} port ${addr.port} (--admin-listen): ${err.message}`)));
    server.listen(addr.port, ip.text, () => resolve());
  });
  return server;
}
