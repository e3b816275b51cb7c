// HTTP servers on unix sockets (the daemon's local API, the control server's
// admin socket): listen with a given mode, and close removing the socket file.
import { chmodSync, rmSync } from './cjs.js';
import { createServer, type RequestListener, type Server } from 'node:http';

export async function listenUnix(path: string, mode: number, handler: RequestListener): Promise<Server> {
  rmSync(path, { force: true });
  // no Date header: a local client has the time, and formatting it maps ~0.4 MB of ICU
  // time-zone data into the daemon (docs/performance.md, "Idle memory")
  const server = createServer((req, res) => {
    res.sendDate = false;
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, mode);
  return server;
}

export async function closeUnix(server: Server | null, path: string): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(path, { force: true });
}
