// A stand-in control server for tests of the node's side of the protocol:
// real HTTPS on loopback (a self-signed certificate the client pins), a
// control key at /key, and a map stream whose lines the test writes itself,
// so it can send what a hostile or broken server would.
import { createServer, type Server } from 'node:https';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { PATHS } from '../../src/control/protocol.js';

export interface FakeControl {
  url: string;
  certPem: string;
  /** the open map streams, newest last */
  streams: ServerResponse[];
  /** resolves with the next map stream opened */
  nextStream(): Promise<ServerResponse>;
  close(): Promise<void>;
}

/** `register` is what the register request is answered with (any JSON, valid or not). */
export async function fakeControl(o: { register?: () => unknown } = {}): Promise<FakeControl> {
  const cert = createSelfSigned('fake-control', ['127.0.0.1']);
  const controlKey = keyToText(publicKeyOf(generatePrivateKey()));
  const streams: ServerResponse[] = [];
  let waiters: ((r: ServerResponse) => void)[] = [];
  const server: Server = createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
    if (req.method === 'GET' && req.url === PATHS.key) return void res.end(JSON.stringify({ publicKey: controlKey }));
    if (req.method === 'POST' && req.url === PATHS.register && o.register) {
      req.resume();
      return void req.on('end', () => res.end(JSON.stringify(o.register!())));
    }
    if (req.method === 'POST' && req.url === PATHS.map) {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.flushHeaders();
      streams.push(res);
      for (const w of waiters.splice(0)) w(res);
      return;
    }
    res.writeHead(404).end(JSON.stringify({ error: { code: 'NODE_UNKNOWN', message: 'no' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    certPem: cert.certPem,
    streams,
    nextStream: () => new Promise((r) => waiters.push(r)),
    close: async () => {
      for (const s of streams) s.destroy();
      waiters = [];
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
