// Shared pieces of the relay tests: a real relay on loopback, a relay client
// that records what it hears, a raw client that stops after the handshake, and
// a stand-in for the control server's verify endpoint (real HTTPS on loopback).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { boxKey, sealBox } from '../../src/crypto/box.js';
import { keyToText } from '../../src/crypto/keys.js';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { RelayClient } from '../../src/relay/client.js';
import { FrameReader, FrameType, frame, KEY_LEN, SERVER_MAGIC } from '../../src/relay/frames.js';
import { RelayServer, type RelayServerOptions } from '../../src/relay/server.js';

export async function relay(extra: Partial<RelayServerOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-relay-'));
  const logs: string[] = [];
  const r = new RelayServer({ host: '127.0.0.1', port: 0, stunPort: 0, region: 'test', stateDir: dir, logger: (m) => logs.push(m), ...extra });
  await r.start();
  return { r, logs, url: `https://127.0.0.1:${r.boundPort}`, close: async () => (await r.stop(), rmSync(dir, { recursive: true, force: true })) };
}

/** Polls `pred` every 20 ms until it holds, or throws after `ms`. */
export async function until(pred: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function client(url: string, opts: { fingerprint?: string; priv?: Buffer; meshKey?: string; shortIds?: number } = {}) {
  const priv = opts.priv ?? generatePrivateKey();
  const got: { src: Buffer; pkt: Buffer }[] = [];
  const c = new RelayClient({
    url,
    ...(opts.fingerprint ? { fingerprint: opts.fingerprint } : {}),
    ...(opts.meshKey ? { meshKey: opts.meshKey } : {}),
    ...(opts.shortIds !== undefined ? { shortIds: opts.shortIds } : {}),
    nodePrivate: priv,
    onPacket: (src, pkt) => got.push({ src: Buffer.from(src), pkt: Buffer.from(pkt) }),
  });
  c.start();
  return { c, got, pub: publicKeyOf(priv) };
}

/**
 * A raw TLS connection (from `localAddress`, default 127.0.0.1) that upgrades and reads the
 * relay's key, sending nothing more: a client silent in its handshake. Rejects with the status
 * line when the upgrade is refused, or when the connection closes first.
 */
export async function rawUpgrade(port: number, opts: { localAddress?: string } = {}): Promise<{ s: TLSSocket; serverKey: Buffer }> {
  const tcp = netConnect({ host: '127.0.0.1', port, localAddress: opts.localAddress ?? '127.0.0.1' });
  const s = connect({ socket: tcp, rejectUnauthorized: false });
  await new Promise((r, j) => (s.once('secureConnect', r), s.once('error', j), s.once('close', () => j(new Error('closed before TLS')))));
  s.write('GET /relay HTTP/1.1\r\nHost: x\r\nUpgrade: meshctl-relay\r\nConnection: Upgrade\r\n\r\n');
  const serverKey = await new Promise<Buffer>((resolve, reject) => {
    let text = Buffer.alloc(0);
    const reader = new FrameReader();
    let headers = true;
    const onData = (d: Buffer): void => {
      if (headers) {
        text = Buffer.concat([text, d]);
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        headers = false;
        const status = text.subarray(0, text.indexOf('\r\n')).toString('latin1');
        if (!/^HTTP\/1\.1 101 /.test(status)) return reject(new Error(`upgrade refused: ${status}`));
        d = text.subarray(end + 4);
      }
      for (const f of reader.push(d)) {
        if (f.type === FrameType.serverKey) {
          s.off('data', onData);
          resolve(Buffer.from(f.payload.subarray(SERVER_MAGIC.length, SERVER_MAGIC.length + KEY_LEN)));
        }
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed during the upgrade')));
  });
  return { s, serverKey };
}

/**
 * A raw TLS connection that upgrades and sends a valid ClientInfo (and `trailing`), then hands
 * the socket back: what it sends next arrives before the relay has decided.
 */
export async function rawHandshake(port: number, opts: { priv?: Buffer; trailing?: Buffer; localAddress?: string } = {}): Promise<TLSSocket> {
  const priv = opts.priv ?? generatePrivateKey();
  const { s, serverKey } = await rawUpgrade(port, opts);
  const info = Buffer.from(JSON.stringify({ version: 1, tsMs: Date.now() }));
  // `trailing` goes in the same write (one TLS record): it reaches the relay in the read that brings the ClientInfo
  s.write(Buffer.concat([frame(FrameType.clientInfo, publicKeyOf(priv), sealBox(boxKey(priv, serverKey), info)), opts.trailing ?? Buffer.alloc(0)]));
  return s;
}

/** Collects the frames `s` receives from now on. */
export function collectFrames(s: TLSSocket): { type: number; payload: Buffer }[] {
  const got: { type: number; payload: Buffer }[] = [];
  const reader = new FrameReader();
  s.on('data', (d: Buffer) => got.push(...reader.push(d)));
  return got;
}

/**
 * The control server's `GET /meshctl/v1/verify?nodeKey=` as a stand-in: 200 for
 * keys in `known`, 404 for others; with `hold` set it never answers. Counts
 * requests and the most it had open at once.
 */
export async function fakeVerify() {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-fakectl-'));
  const cert = createSelfSigned('fake control', ['127.0.0.1']);
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, cert.certPem);
  const known = new Set<string>();
  const held: ServerResponse[] = [];
  const st = { requests: 0, open: 0, maxOpen: 0, hold: false, times: [] as number[] };
  const server: Server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    st.requests++;
    st.times.push(Date.now());
    st.open++;
    st.maxOpen = Math.max(st.maxOpen, st.open);
    res.on('close', () => st.open--);
    const key = new URL(req.url ?? '/', 'https://x').searchParams.get('nodeKey') ?? '';
    if (st.hold) return void held.push(res);
    res.writeHead(known.has(key) ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ known: known.has(key) }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    caFile,
    known,
    st,
    allow: (pub: Buffer) => known.add(keyToText(pub)),
    forget: (pub: Buffer) => known.delete(keyToText(pub)),
    close: async () => {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
