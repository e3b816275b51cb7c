// Shared by the control server's tests: a real server on loopback with a temp
// state dir, requests sealed by hand (so a test controls every field), and
// raw HTTPS posts that return the status and the parsed body.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin } from '../../src/control/admin-client.js';
import { ControlError } from '../../src/control/protocol.js';
import { ControlServer, type ControlServerOptions } from '../../src/control/server.js';
import type { ControlStore } from '../../src/control/store.js';
import { boxKey, sealBox } from '../../src/crypto/box.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { parseMapLine } from '../../src/netmap/parse.js';
import type { NetworkMap } from '../../src/netmap/types.js';

export interface Harness {
  dir: string;
  server: ControlServer;
  url: string;
  /** a reusable auth key */
  authKey(): Promise<string>;
  post(path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
  get(path: string): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

/**
 * The running server's own store: the database file is locked to the server while it runs (db-lock.ts), so a
 * test reads what it holds through the server's handle, not by opening the file a second time.
 */
export const storeOf = (h: Harness): ControlStore => (h.server as unknown as { store: ControlStore }).store;

export const tempDir = (): string => mkdtempSync(join(tmpdir(), 'meshctl-control-'));

export async function harness(opts: Partial<ControlServerOptions> = {}, dir = tempDir()): Promise<Harness> {
  const server = new ControlServer({ host: '127.0.0.1', port: 0, stateDir: dir, ...opts });
  await server.start();
  const url = `https://127.0.0.1:${server.boundPort}`;
  return {
    dir,
    server,
    url,
    authKey: async () => (await admin.createAuthKey(dir, { reusable: true, ephemeral: false, expiryMs: null })).key,
    post: (path, body) => statusAndBody(send(url, server.certPem, 'POST', path, typeof body === 'string' ? body : JSON.stringify(body))),
    get: (path) => statusAndBody(send(url, server.certPem, 'GET', path, undefined)),
    close: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The parts of a reply most tests compare whole (headers carry dates and lengths). */
const statusAndBody = async (p: Promise<Reply>): Promise<{ status: number; body: Record<string, unknown> }> => {
  const { status, body } = await p;
  return { status, body };
};

export interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: IncomingHttpHeaders;
}

/** One request on a fresh connection; `localAddress` picks the client's source address (127.0.0.2 is another source). */
export function send(url: string, ca: string, method: string, path: string, body: string | undefined, localAddress?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, ca, agent: false, localAddress }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          parsed = { text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A node key pair, and sealing of arbitrary plaintext objects to the server's control key. */
export class Node {
  readonly key: string;
  constructor(
    private readonly controlPublic: Buffer,
    readonly priv: Buffer = generatePrivateKey(),
  ) {
    this.key = keyToText(publicKeyOf(priv));
  }

  /** seals `fields` as given (nothing added) */
  sealRaw(fields: unknown): { nodeKey: string; box: string } {
    const plain = Buffer.from(typeof fields === 'string' ? fields : JSON.stringify(fields));
    return { nodeKey: this.key, box: sealBox(boxKey(this.priv, this.controlPublic), plain).toString('base64') };
  }

  /** seals `body` with a correct header for `op` */
  seal(op: string, body: object, tsMs = Date.now()): { nodeKey: string; box: string } {
    return this.sealRaw({ ...body, op, tsMs, nonce: randomBytes(12).toString('hex') });
  }
}

export const discoKey = (): string => keyToText(publicKeyOf(generatePrivateKey()));

export const registerBody = (authKey: string | undefined, hostname = 'n'): Record<string, unknown> => ({
  authKey,
  hostname,
  os: 'linux',
  version: 't',
  discoKey: discoKey(),
  endpoints: [],
});

/** Polls `cond` until it holds or `ms` pass. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `p`, or an error once `ms` pass. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface OpenStream {
  req: ClientRequest;
  res: IncomingMessage;
  ended: Promise<void>;
  lines: () => string[];
}

/** Opens a map stream by hand; `read: false` leaves it paused (a client that never reads). */
export function openStream(h: Harness, n: Node, read = true): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = request(`${h.url}/meshctl/v1/map`, { method: 'POST', ca: h.server.certPem, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`map: HTTP ${res.statusCode}`));
      let buf = '';
      const lines: string[] = [];
      const ended = new Promise<void>((r) => {
        res.on('close', () => r());
        res.on('end', () => r());
        res.on('error', () => r());
      });
      req.on('error', () => {});
      res.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      if (!read) res.pause();
      resolve({ req, res, ended, lines: () => lines });
    });
    req.on('error', reject);
    req.end(JSON.stringify(n.seal('map', { endpoints: [], discoKey: discoKey() })));
  });
}

/** The latest map a stream carried, as the node's strict parser reads it. */
export function latestMap(s: OpenStream): NetworkMap | undefined {
  for (const line of [...s.lines()].reverse()) {
    const l = parseMapLine(JSON.parse(line));
    if (l?.type === 'map') return l.map;
  }
  return undefined;
}

/** The ControlError code `fn` throws, or 'no error'. */
export const controlErrorCode = async (fn: () => unknown): Promise<string> => {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ControlError, String(err));
    return err.code;
  }
  return 'no error';
};
