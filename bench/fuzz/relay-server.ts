// A real relay (src/relay/server.ts) on loopback receiving hostile streams
// over TLS: garbage instead of HTTP, mutated upgrade requests, random bytes
// after a good upgrade, mutated ClientInfo frames, ClientInfo sealed properly
// around mutated JSON, and random frames after a good handshake. Checked:
// no 5xx status line, no uncaught exception in the process, every answered
// stream starts as the protocol says (101 then ServerKey), the relay keeps
// answering its probe, and no client stays registered once every
// connection is closed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { request } from 'node:https';
import { boxKey, sealBox } from '../../src/crypto/box.js';
import { clampPrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { FrameReader, FrameType, frame, RELAY_PATH, RELAY_UPGRADE, SERVER_MAGIC } from '../../src/relay/frames.js';
import { RelayServer } from '../../src/relay/server.js';
import { check, fuzzLoop, HTTP_INPUT_LIMIT_MS, ServerError, watchUncaught, type FuzzTarget } from './harness.js';
import { mutateBytes, mutateJson, randomBytes } from './mutate.js';
import { Rng } from './rng.js';

/** The relay answered everything it will answer once the stream is quiet this long (it runs in this process, on loopback). */
const SETTLE_MS = 25;
/** How long a valid handshake may take to get its first answer on a loaded machine before it counts as unanswered. */
const FIRST_ANSWER_MS = 2000;
/** The probe is asked every this many inputs. */
const PROBE_EVERY = 200;

export function httpsGet(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends `data` on a fresh TLS connection and collects what comes back until the relay closes, pongs `probe`, or goes quiet. */
function exchange(port: number, data: Buffer, probe: Buffer | null, expectAnswer = false): Promise<Buffer> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;
    const sock = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    const finish = (): void => {
      if (timer) clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(got));
    };
    const quiet = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(finish, SETTLE_MS);
    };
    sock.on('secureConnect', () => {
      sock.write(data);
      if (expectAnswer) timer = setTimeout(finish, FIRST_ANSWER_MS);
      else quiet();
    });
    sock.on('data', (c: Buffer) => {
      got.push(c);
      if (probe && Buffer.concat(got).includes(probe)) return finish();
      quiet();
    });
    sock.on('error', () => {});
    sock.on('close', finish);
  });
}

const target: FuzzTarget = {
  name: 'relay-server',
  kind: 'http',
  description: 'a relay on loopback: garbage before/after the upgrade, mutated handshakes, random frames; no 5xx, no crash, stays up, no leaked clients',
  run: async (rng, iterations, onProgress) => {
    const dir = mkdtempSync(join(tmpdir(), 'meshctl-fuzz-relay-'));
    // every input comes from 127.0.0.1, and inputs that never upgrade stay pending until their deadline:
    // (and upgraded ones that never prove a key hold a handshake slot): the caps have tests of their own
    const relay = new RelayServer({
      host: '127.0.0.1',
      port: 0,
      stunPort: 0,
      region: 'fuzz',
      stateDir: dir,
      maxHandshakes: 100_000,
      pending: { maxPerSource: 100_000, maxTotal: 100_000 },
    });
    const uncaught = watchUncaught();
    await relay.start();
    const port = relay.boundPort;
    const serverKey = relay.publicKey!;
    const setup = new Rng(rng.seed ^ 0x4e1a);
    const clients = Array.from({ length: 4 }, () => {
      const priv = clampPrivateKey(setup.bytes(32));
      return { pub: publicKeyOf(priv), key: boxKey(priv, serverKey) };
    });
    const upgrade = Buffer.from(`GET ${RELAY_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: ${RELAY_UPGRADE}\r\nConnection: Upgrade\r\n\r\n`);
    let n = 0;
    try {
      const stats = await fuzzLoop(
        rng,
        iterations,
        onProgress,
        async (r, ctx) => {
          const c = r.pick(clients);
          // half the clients agree on short peer ids (a table of 1 to 256), so their short-id frames are exercised too
          const info: Record<string, unknown> = { version: 1, tsMs: Date.now(), ...(r.chance(0.5) ? { shortIds: r.range(1, 256) } : {}) };
          const kind = r.int(7);
          const infoJson = kind === 4 ? mutateJson(r, info) : info;
          const clientInfo = frame(FrameType.clientInfo, c.pub, sealBox(c.key, Buffer.from(JSON.stringify(infoJson) ?? 'null')));
          const frames = (): Buffer =>
            Buffer.concat(
              Array.from({ length: r.range(0, 5) }, () => {
                const t = r.chance(0.8) ? r.range(0, 17) : r.int(256);
                const dst = r.chance(0.5) ? r.pick(clients).pub : r.bytes(32);
                const id = Buffer.of(0, r.chance(0.8) ? r.int(4) : r.int(256));
                const payload =
                  t === FrameType.sendPacket || t === FrameType.forwardPacket
                    ? Buffer.concat([dst, randomBytes(r, 300)])
                    : t === FrameType.peerId
                      ? Buffer.concat([id, dst])
                      : t === FrameType.sendPacketShort
                        ? Buffer.concat([id, randomBytes(r, 300)])
                        : randomBytes(r, 64);
                return frame(t, payload);
              }),
            );
          const probe = r.bytes(8);
          const ping = frame(FrameType.ping, probe);
          let data: Buffer;
          let expectPong = false;
          if (kind === 0) data = randomBytes(r, 400);
          else if (kind === 1) data = mutateBytes(r, upgrade);
          else if (kind === 2) data = Buffer.concat([upgrade, randomBytes(r, 400)]);
          else if (kind === 3) data = Buffer.concat([upgrade, mutateBytes(r, clientInfo)]);
          else if (kind === 4) data = Buffer.concat([upgrade, clientInfo, frames(), ping]);
          else if (kind === 5) data = Buffer.concat([upgrade, clientInfo, mutateBytes(r, frames()), ping]);
          else {
            data = Buffer.concat([upgrade, clientInfo, frames(), ping]);
            expectPong = true;
          }
          ctx.input = { kind, data };
          const answer = await exchange(port, data, probe, kind === 4 || kind >= 6);
          const crash = uncaught.take();
          if (crash) throw new ServerError(`uncaught in the relay process: ${crash}`);
          const text = answer.toString('latin1');
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
          if (status && Number(status) >= 500) throw new ServerError(`relay answered ${status}`);
          let accepted = false;
          if (status === '101') {
            const body = answer.subarray(text.indexOf('\r\n\r\n') + 4);
            let got: { type: number; payload: Buffer }[] = [];
            try {
              got = new FrameReader().push(body);
            } catch {
              throw new ServerError('the relay sent an oversized frame');
            }
            // a stream the relay drops at once may lose its first frame with it (destroy does not flush)
            check(
              got.length === 0 || (got[0]!.type === FrameType.serverKey && got[0].payload.subarray(0, SERVER_MAGIC.length).equals(SERVER_MAGIC)),
              'the first frame after 101 is not ServerKey',
            );
            accepted = got.some((f) => f.type === FrameType.serverInfo);
            if (expectPong)
              check(
                got.length > 0 && accepted && got.some((f) => f.type === FrameType.pong && f.payload.equals(probe)),
                'a valid handshake and ping got no ServerInfo and pong',
              );
          } else check(kind !== 4 && kind !== 6, `a valid upgrade and ClientInfo frame were answered ${JSON.stringify(text.slice(0, 40))}`);
          if (++n % PROBE_EVERY === 0) {
            const s = await httpsGet(port, '/relay/probe');
            if (s !== 200) throw new ServerError(`the relay's probe answered ${s} after ${n} inputs`);
          }
          return accepted ? 'accepted' : 'rejected';
        },
        { inputLimitMs: HTTP_INPUT_LIMIT_MS },
      );
      // every connection is closed: nobody may stay registered
      const deadline = Date.now() + 5000;
      while (relay.clients.size > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      if (relay.clients.size > 0) {
        stats.crashCount++;
        stats.crashes.push({
          inputSeed: rng.seed,
          iteration: iterations,
          kind: 'invariant',
          message: `${relay.clients.size} clients still registered after every connection closed`,
          input: '',
        });
      }
      if ((await httpsGet(port, '/relay/probe')) !== 200) {
        stats.crashCount++;
        stats.crashes.push({ inputSeed: rng.seed, iteration: iterations, kind: 'server-error', message: 'the relay stopped answering its probe', input: '' });
      }
      return stats;
    } finally {
      uncaught.stop();
      await relay.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
export default target;
