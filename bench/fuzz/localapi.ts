// The daemon's local API (src/daemon/localapi-server.ts) on a temp unix
// socket, in this process, over the real Backend in a temp state dir. Only
// `up` is a double: the real one creates a TUN device and dials whatever
// login server the body names, so the double runs the real checks up to
// there (a login server is required; ControlClient parses it) and then
// answers UNREACHABLE. Inputs to every route (status, netcheck, whois, ping,
// up, down, logout, prefs, unknown ones, other methods, browser headers):
// valid bodies and their mutations, random JSON, random bytes, odd query
// strings. Checked: never a 500 (FAILURE: an exception the route did not
// mean), 502/504 only with their documented codes, no error line with
// FAILURE in `up`'s stream, no uncaught exception, status keeps answering.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backend } from '../../src/daemon/backend.js';
import { ControlClient } from '../../src/daemon/control-client.js';
import { LocalApiServer } from '../../src/daemon/localapi-server.js';
import { ApiError, LOCALAPI, type Status, type UpRequest } from '../../src/localapi/types.js';
import { generatePrivateKey } from '../../src/crypto/x25519.js';
import { check, fuzzLoop, HTTP_INPUT_LIMIT_MS, ServerError, watchUncaught, type FuzzTarget } from './harness.js';
import { exchangeHttp } from './http-client.js';
import { jsonText, mutateJson, randomBytes, randomJson } from './mutate.js';
import type { Rng } from './rng.js';

/** The status route is asked every this many inputs. */
const STATUS_EVERY = 200;

/** The real Backend but for `up`, which stops where the real one would create a TUN device and dial out. */
class NoEngineBackend extends Backend {
  override async up(req: UpRequest, progress: (msg: string) => void): Promise<Status> {
    const loginServer = req.loginServer ?? this.status().control.url;
    if (!loginServer) throw new ApiError('BAD_REQUEST', 'no login server: pass --login-server https://HOST:PORT');
    new ControlClient(loginServer, req.controlCaPem ?? null, generatePrivateKey());
    progress('fuzz double: no engine here');
    throw new ApiError('UNREACHABLE', `fuzz double: ${loginServer} is not dialled`);
  }
}

const ROUTES: Array<{ method: string; path: string; body: (r: Rng) => unknown }> = [
  { method: 'GET', path: LOCALAPI.status, body: () => undefined },
  { method: 'GET', path: LOCALAPI.netcheck, body: () => undefined },
  { method: 'GET', path: LOCALAPI.whois, body: () => undefined },
  { method: 'POST', path: LOCALAPI.ping, body: (r) => ({ peer: r.pick(['alpha', '100.64.0.1', 'fd7a::1', '']), timeoutMs: r.pick([1, 10, 5000, 60_000]) }) },
  {
    method: 'POST',
    path: LOCALAPI.up,
    body: (r) => ({
      loginServer: r.pick(['https://127.0.0.1:1', 'http://x', 'not a url', 'https://[::1]:9/']),
      authKey: 'mskey-0123456789ab-' + 'cd'.repeat(24),
      hostname: 'h',
      ifname: 'fuzz0',
      port: 0,
      timeoutMs: 1000,
    }),
  },
  { method: 'POST', path: LOCALAPI.down, body: () => ({}) },
  { method: 'POST', path: LOCALAPI.logout, body: () => ({}) },
  { method: 'POST', path: LOCALAPI.prefs, body: (r) => ({ operator: r.pick([null, 'root', '1000', 'nobody']), hostname: r.pick(['alpha', 'x'.repeat(70)]) }) },
];

const target: FuzzTarget = {
  name: 'localapi',
  kind: 'http',
  description: 'the local API on a unix socket over the real Backend (up is a double): never 500, documented 5xx only, no crash',
  run: async (rng, iterations, onProgress) => {
    const dir = mkdtempSync(join(tmpdir(), 'meshctl-fuzz-localapi-'));
    const socketPath = join(dir, 'api.sock');
    const uncaught = watchUncaught();
    const backend = new NoEngineBackend({ stateDir: join(dir, 'state'), defaults: { ifname: 'fuzz0', port: 0 }, version: 'fuzz', logger: () => {} });
    const api = new LocalApiServer(socketPath, backend);
    await api.start();
    let count = 0;
    try {
      return await fuzzLoop(
        rng,
        iterations,
        onProgress,
        async (r, ctx) => {
          const route = r.pick(ROUTES);
          let method = route.method;
          let path: string = route.path;
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          const kind = r.int(10);
          let payload: string | Buffer | undefined;
          const valid = route.body(r);
          if (kind <= 1) payload = valid === undefined ? undefined : JSON.stringify(valid);
          else if (kind <= 4) payload = JSON.stringify(mutateJson(r, valid ?? {}));
          else if (kind === 5) payload = jsonText(r, randomJson(r), 0.3);
          else if (kind === 6) payload = randomBytes(r, 300);
          else if (kind === 7) path = `${route.path}?${r.pick(['ip=', 'ip=100.64.0.1', 'ip=%zz', 'ip=' + 'a'.repeat(500), 'ip=::1&ip=x', '%', '&&'])}`;
          else if (kind === 8) {
            method = r.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']);
            path = r.pick([
              route.path,
              `${route.path}/`,
              '/',
              '/localapi/v1/',
              `/localapi/v1/${r.bytes(3).toString('hex')}`,
              '//localapi/v1/status',
              '/localapi/v1/status/..',
            ]);
            payload = r.chance(0.5) ? JSON.stringify(valid ?? {}) : undefined;
          } else {
            headers[r.pick(['origin', 'referer'])] = 'http://evil.example';
            payload = valid === undefined ? undefined : JSON.stringify(valid);
          }
          ctx.input = { method, path, headers, body: payload };
          const a = await exchangeHttp({ socketPath, method, path, headers, body: payload, agent: false }).catch((err: Error) => {
            throw new ServerError(`${method} ${path}: the connection dropped without an answer (${err.message})`);
          });
          const crash = uncaught.take();
          if (crash) throw new ServerError(`uncaught in the daemon's process: ${crash}`);
          const code = /"code":"([A-Z_]+)"/.exec(a.body)?.[1];
          if (a.status === 500 || (a.status > 500 && code !== 'UNREACHABLE' && code !== 'TIMEOUT'))
            throw new ServerError(`${method} ${path} answered ${a.status}: ${a.body.slice(0, 300)}`);
          if (a.status === 200 && path === LOCALAPI.up) {
            const last = a.body.trim().split('\n').at(-1) ?? '';
            if (code === 'FAILURE') throw new ServerError(`up's stream ended with a FAILURE: ${last.slice(0, 300)}`);
          }
          check(a.status >= 200, `no status (${a.status})`);
          if (++count % STATUS_EVERY === 0) {
            const s = await exchangeHttp({ socketPath, method: 'GET', path: LOCALAPI.status, agent: false });
            if (s.status !== 200) throw new ServerError(`status answered ${s.status} after ${count} inputs`);
          }
          return a.status < 300 && !/"type":"error"/.test(a.body) ? 'accepted' : 'rejected';
        },
        { inputLimitMs: HTTP_INPUT_LIMIT_MS },
      );
    } finally {
      uncaught.stop();
      await api.stop();
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
export default target;
