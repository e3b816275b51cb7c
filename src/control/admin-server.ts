// The operator's side door into a running control server: HTTP on a unix
// socket in the state dir, mode 0600, so only whoever owns the state dir (the
// same person who can read the database) administers the network.
import type { Server } from 'node:http';
import { closeUnix, listenUnix } from '../util/unix-http.js';
import { deleteNode, expireNode, listNodes, newAuthKey } from './admin-ops.js';
import { readJson, sendError, sendJson } from './http-util.js';
import { ControlError } from './protocol.js';
import type { Registry } from './registry.js';

export class AdminServer {
  private server: Server | null = null;

  constructor(
    private readonly path: string,
    private readonly registry: Registry,
    private readonly changed: () => void,
    private readonly online: (id: number) => boolean,
    private readonly endStreams: (id: number, reason: 'NODE_UNKNOWN' | 'NODE_EXPIRED') => void,
  ) {}

  async start(): Promise<void> {
    this.server = await listenUnix(this.path, 0o600, (req, res) => {
      void (async () => {
        try {
          const url = new URL(req.url ?? '/', 'http://admin');
          const body = (req.method === 'POST' ? await readJson(req) : {}) as Record<string, unknown>;
          const ref = url.searchParams.get('node') ?? '';
          const route = `${req.method} ${url.pathname}`;
          if (route === 'GET /admin/nodes') return sendJson(res, 200, listNodes(this.registry, this.online));
          if (route === 'POST /admin/nodes/delete') {
            const n = deleteNode(this.registry, ref);
            this.endStreams(n.id, 'NODE_UNKNOWN');
            this.changed();
            return sendJson(res, 200, n);
          }
          if (route === 'POST /admin/nodes/expire') {
            const n = expireNode(this.registry, ref);
            this.endStreams(n.id, 'NODE_EXPIRED');
            this.changed();
            return sendJson(res, 200, n);
          }
          if (route === 'POST /admin/authkeys') {
            const expiryMs = typeof body.expiryMs === 'number' ? body.expiryMs : null;
            return sendJson(res, 200, newAuthKey(this.registry, { reusable: body.reusable === true, ephemeral: body.ephemeral === true, expiryMs }));
          }
          throw new ControlError('BAD_REQUEST', `no ${route} here`);
        } catch (err) {
          sendError(res, err);
        }
      })();
    });
  }

  async stop(): Promise<void> {
    await closeUnix(this.server, this.path);
    this.server = null;
  }
}
