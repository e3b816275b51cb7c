// The control server's request handlers (src/control/server.ts) on a real
// HTTPS server on loopback, in this process. Inputs to every route (register,
// map, endpoints, logout, key, healthz, verify, unknown ones, other methods):
// requests sealed properly around valid and mutated bodies (type swaps,
// missing fields, odd strings) so they reach the registry; sealed JSON that
// is not an object; mutated outer objects; random JSON and bytes. A reusable
// auth key and a pool of node keys let registrations succeed and the other
// routes find known nodes. Checked: never a 5xx, no uncaught exception, the
// server keeps answering /healthz.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { boxKey, sealBox } from '../../src/crypto/box.js';
import { keyToText } from '../../src/crypto/keys.js';
import { clampPrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { admin } from '../../src/control/admin-client.js';
import { PATHS, type SealedOp } from '../../src/control/protocol.js';
import { ControlServer } from '../../src/control/server.js';
import { check, fuzzLoop, HTTP_INPUT_LIMIT_MS, ServerError, watchUncaught, type FuzzTarget } from './harness.js';
import { exchangeHttp, keepAliveTlsAgent } from './http-client.js';
import { jsonText, mutateBytes, mutateJson, randomBytes, randomJson } from './mutate.js';
import { Rng } from './rng.js';

const OPS: SealedOp[] = ['register', 'map', 'endpoints', 'advertise', 'logout'];
/** /healthz is asked every this many inputs. */
const HEALTH_EVERY = 200;

const target: FuzzTarget = {
  name: 'control',
  kind: 'http',
  description: 'control server routes on loopback: sealed valid/mutated bodies, mutated and random JSON; never 5xx, no crash, stays up',
  run: async (rng, iterations, onProgress) => {
    const dir = mkdtempSync(join(tmpdir(), 'meshctl-fuzz-control-'));
    // the server logs every non-ControlError it turns into a 500 or a dropped stream: shown with the failure
    const errors: string[] = [];
    // the rate limits and nonce caps have tests of their own; here they would turn most inputs into a 429 before a handler sees them
    const unlimited = 1e9;
    const limits = {
      sealedRequestsPerSecPerSource: unlimited,
      sealedBurstPerSource: unlimited,
      verifyRequestsPerSecPerSource: unlimited,
      verifyBurstPerSource: unlimited,
      maxSeenNonces: unlimited,
      maxSeenNoncesPerKey: unlimited,
    };
    const server = new ControlServer({ host: '127.0.0.1', port: 0, stateDir: dir, limits, logger: (m) => void (m.startsWith('error on') && errors.push(m)) });
    const uncaught = watchUncaught();
    await server.start();
    const agent = keepAliveTlsAgent();
    const port = server.boundPort;
    const controlPublic = server.publicKey!;
    const { key: authKey } = await admin.createAuthKey(dir, { reusable: true, ephemeral: false, expiryMs: null });
    const setup = new Rng(rng.seed ^ 0xc0c0);
    const nodes = Array.from({ length: 16 }, () => {
      const priv = clampPrivateKey(setup.bytes(32));
      const pub = publicKeyOf(priv);
      return { text: keyToText(pub), key: boxKey(priv, controlPublic) };
    });
    const body = (r: Rng, op: SealedOp): Record<string, unknown> => {
      const endpoints = Array.from({ length: r.length(4) }, () =>
        r.chance(0.9) ? r.pick(['192.0.2.1:41641', '[2001:db8::7]:9']) : r.pick(['10.0.0.1:0', 'x', '::1']),
      );
      if (op === 'register') {
        return {
          authKey: r.chance(0.8) ? authKey : `mskey-${r.bytes(6).toString('hex')}-${r.bytes(24).toString('hex')}`,
          hostname: r.pick(['alpha', 'Beta_1', 'x'.repeat(80), 'ü', '']),
          os: 'linux',
          version: '0.1.0',
          discoKey: keyToText(r.bytes(32)),
          endpoints,
          ...(r.chance(0.3) ? { advertised: advertised(r) } : {}),
        };
      }
      if (op === 'advertise') return advertised(r);
      if (op === 'map') return { endpoints, discoKey: keyToText(r.bytes(32)) };
      if (op === 'endpoints') return { endpoints, homeRelay: r.pick(['fra', null, '', 'x'.repeat(100)]) };
      return {};
    };
    // subnet routes a node advertises: valid ones, host bits set, the mesh, the default route, special blocks
    const advertised = (r: Rng): Record<string, unknown> => ({
      routes: Array.from({ length: r.length(4) }, () =>
        r.pick(['192.168.1.0/24', 'fd00:1::/64', '10.0.0.1/8', '100.64.0.0/12', '0.0.0.0/0', '::/0', '127.0.0.0/8', 'ff02::/16', '10.0.0.0/33', 'x']),
      ),
      exitNode: r.pick([true, false, 'yes']),
    });
    const sealed = (r: Rng, plain: Buffer): unknown => {
      const n = r.pick(nodes);
      return { nodeKey: n.text, box: sealBox(n.key, plain).toString('base64') };
    };
    let count = 0;
    try {
      return await fuzzLoop(
        rng,
        iterations,
        onProgress,
        async (r, ctx) => {
          const op = r.pick(OPS);
          const kind = r.int(10);
          let method = 'POST';
          let path: string = PATHS[op];
          let payload: Buffer | string;
          const header = (): Record<string, unknown> => ({ op: r.chance(0.95) ? op : r.pick(OPS), tsMs: Date.now(), nonce: r.bytes(12).toString('hex') });
          if (kind <= 1) payload = JSON.stringify(sealed(r, Buffer.from(JSON.stringify({ ...body(r, op), ...header() }))));
          else if (kind <= 4) payload = JSON.stringify(sealed(r, Buffer.from(JSON.stringify(mutateJson(r, { ...body(r, op), ...header() })))));
          else if (kind === 5) payload = JSON.stringify(sealed(r, Buffer.from(jsonText(r, randomJson(r), 0.3))));
          else if (kind === 6) payload = jsonText(r, mutateJson(r, sealed(r, Buffer.from(JSON.stringify({ ...body(r, op), ...header() })))), 0.2);
          else if (kind === 7) payload = jsonText(r, randomJson(r), 0.3);
          else if (kind === 8) payload = randomBytes(r, 300);
          else {
            method = r.pick(['GET', 'GET', 'PUT', 'DELETE', 'POST', 'OPTIONS']);
            const verify = `${PATHS.verify}?nodeKey=${encodeURIComponent(r.pick([...nodes.map((x) => x.text), 'x', '%', '']))}`;
            path = r.pick([
              PATHS.key,
              '/healthz',
              verify,
              `${PATHS.verify}?`,
              '/',
              '/meshctl/v1/',
              `/${r.bytes(4).toString('hex')}`,
              `${PATHS.register}/../map`,
            ]);
            payload = r.chance(0.5) ? '' : mutateBytes(r, Buffer.from('{"a":1}'));
          }
          ctx.input = { method, path, body: typeof payload === 'string' ? payload : payload };
          errors.length = 0;
          const headers = { 'content-type': 'application/json' };
          const streaming = (res: IncomingMessage): boolean => res.statusCode === 200 && path === PATHS.map;
          const a = await exchangeHttp({
            tls: true,
            agent,
            rejectUnauthorized: false,
            host: '127.0.0.1',
            port,
            method,
            path,
            body: payload,
            headers,
            streaming,
          }).catch((err: Error) => {
            throw new ServerError(
              `${method} ${path}: the connection dropped without an answer (${err.message}); server log: ${errors.join('; ') || 'nothing'}`,
            );
          });
          const crash = uncaught.take();
          if (crash) throw new ServerError(`uncaught in the control server's process: ${crash}`);
          if (a.status >= 500) throw new ServerError(`${method} ${path} answered ${a.status}: ${a.body.slice(0, 300)}`);
          check(a.status >= 200, `no status (${a.status})`);
          if (++count % HEALTH_EVERY === 0) {
            const h = await exchangeHttp({ tls: true, agent, rejectUnauthorized: false, host: '127.0.0.1', port, method: 'GET', path: '/healthz' });
            if (h.status !== 200) throw new ServerError(`/healthz answered ${h.status} after ${count} inputs`);
          }
          return a.status < 300 ? 'accepted' : 'rejected';
        },
        { inputLimitMs: HTTP_INPUT_LIMIT_MS },
      );
    } finally {
      uncaught.stop();
      agent.destroy();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
export default target;
