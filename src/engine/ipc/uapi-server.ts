// Serves the UAPI on a unix socket (/var/run/wireguard/IFNAME.sock) so the
// standard `wg` tool configures meshctl's engine as it does wireguard-go.
// Garbage on the socket gets a protocol error and a closed connection, never a crash.
import { chmodSync, existsSync, mkdirSync, unlinkSync } from '../../util/cjs.js';
import net from 'node:net';
import { join } from 'node:path';
import { formatGetResponse, parseSetRequest, UAPI_EIO, UAPI_EINVAL } from '../device/uapi.js';
import { UapiError, type UapiTarget } from '../device/uapi-types.js';

/** A `set` with thousands of peers fits easily; anything larger is an attack or a bug. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

export interface UapiServer {
  path: string;
  close(): Promise<void>;
}

function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
}

export async function startUapiServer(opts: { ifname: string; target: UapiTarget; dir?: string; logger?: (msg: string) => void }): Promise<UapiServer> {
  const dir = opts.dir ?? '/var/run/wireguard';
  const path = join(dir, `${opts.ifname}.sock`);
  const log = opts.logger ?? (() => {});
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (existsSync(path)) {
    if (await socketAlive(path)) throw new Error(`UAPI socket ${path} is in use by a running process; stop it or choose another --ifname`);
    unlinkSync(path);
  }
  const server = net.createServer((conn) => serveConnection(conn, opts.target, log));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => (server.off('error', reject), resolve()));
  });
  chmodSync(path, 0o600);
  let closed = false;
  return {
    path,
    close: async () => {
      if (closed) return;
      closed = true;
      await new Promise<void>((r) => server.close(() => r()));
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
    },
  };
}

function serveConnection(conn: net.Socket, target: UapiTarget, log: (m: string) => void): void {
  let buf = '';
  let busy = Promise.resolve();
  conn.setEncoding('utf8');
  conn.on('error', () => {});
  conn.on('data', (chunk: string) => {
    buf += chunk;
    if (buf.length > MAX_REQUEST_BYTES) {
      conn.end(`errno=${UAPI_EINVAL}\n\n`);
      return;
    }
    for (;;) {
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const op = buf.slice(0, nl);
      if (op === 'get=1') {
        if (buf.length < nl + 2) return;
        if (buf[nl + 1] !== '\n') {
          buf = '';
          busy = busy.then(() => void conn.end(`errno=${UAPI_EINVAL}\n\n`));
          return;
        }
        buf = buf.slice(nl + 2);
        busy = busy.then(() => {
          try {
            conn.write(formatGetResponse(target.snapshot()) + 'errno=0\n\n');
          } catch (err) {
            conn.write(`errno=${UAPI_EIO}\n\n`);
            log(`UAPI get failed: ${(err as Error).message}`);
          }
        });
      } else if (op === 'set=1') {
        const end = buf.indexOf('\n\n', nl);
        if (end < 0) return;
        const body = buf.slice(nl + 1, end);
        buf = buf.slice(end + 2);
        busy = busy.then(async () => {
          try {
            await target.applySet(parseSetRequest(body));
            conn.write('errno=0\n\n');
          } catch (err) {
            const errno = err instanceof UapiError ? err.errno : UAPI_EIO;
            log(`UAPI set refused: ${(err as Error).message}`);
            conn.write(`errno=${errno}\n\n`);
          }
        });
      } else {
        // wireguard-go logs and drops the connection on an unknown operation
        log(`invalid UAPI operation ${JSON.stringify(op.slice(0, 40))}`);
        buf = '';
        busy = busy.then(() => void conn.destroy());
        return;
      }
    }
  });
}
