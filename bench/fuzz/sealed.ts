// The sealed-box opener (src/control/sealed.ts over src/crypto/box.ts): what
// the control server does first with every node request. Inputs: random JSON;
// requests sealed properly for the right key whose plaintext is valid,
// mutated JSON (type swaps, missing op/tsMs/nonce), any JSON value (null, a
// number, an array) or not JSON at all; requests with a mutated outer object
// or mutated box bytes; unknown or low-order node keys. The opener must
// answer with its own ControlError or return the body it was given (the
// seal → open round trip); openBox must return null, never throw, for any
// bytes. The clock is injected and moves 100 ms per input, so the nonce
// cache sees about 1200 live entries, as at 10 requests a second.
import { boxKey, openBox, sealBox } from '../../src/crypto/box.js';
import { keyToText } from '../../src/crypto/keys.js';
import { clampPrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { ControlError, type SealedOp } from '../../src/control/protocol.js';
import { SealedOpener } from '../../src/control/sealed.js';
import type { NonceStore } from '../../src/control/store.js';
import { check, fuzzLoop, type FuzzTarget } from './harness.js';
import { jsonText, mutateBytes, mutateJson, randomJson } from './mutate.js';
import { Rng } from './rng.js';

const OPS: SealedOp[] = ['register', 'map', 'endpoints', 'advertise', 'logout'];
/** Simulated time between requests: 10 requests a second. */
const TICK_MS = 100;

function body(r: Rng): Record<string, unknown> {
  return r.pick([
    {
      authKey: 'mskey-0123456789ab-' + 'cd'.repeat(24),
      hostname: 'node-' + r.int(100),
      os: 'linux',
      version: '0.1.0',
      discoKey: keyToText(r.bytes(32)),
      endpoints: ['192.0.2.1:41641'],
    },
    { endpoints: ['[2001:db8::1]:41641'], discoKey: keyToText(r.bytes(32)) },
    { endpoints: [], homeRelay: 'fra' },
    {},
  ]);
}

const target: FuzzTarget = {
  name: 'sealed',
  kind: 'pure',
  description: 'SealedOpener.open/openBox: ControlError or the sealed body back, never another exception',
  run: async (rng, iterations, onProgress) => {
    const setup = new Rng(rng.seed ^ 0x5eed);
    const controlPrivate = clampPrivateKey(setup.bytes(32));
    const controlPublic = publicKeyOf(controlPrivate);
    const nodes = Array.from({ length: 8 }, () => {
      const priv = clampPrivateKey(setup.bytes(32));
      const pub = publicKeyOf(priv);
      return { pub, text: keyToText(pub), key: boxKey(priv, controlPublic) };
    });
    let now = 1_700_000_000_000;
    // the opener's nonce cache, in memory: the target is the opener, not the database
    const seen = new Map<string, number>();
    let prunedAtMs = 0;
    const nonces: NonceStore = {
      async rememberNonce(nodeKey, nonce, expiresAtMs, nowMs) {
        if (nowMs - prunedAtMs > 10_000) {
          for (const [k, exp] of seen) if (exp <= nowMs) seen.delete(k);
          prunedAtMs = nowMs;
        }
        const k = `${nodeKey} ${nonce}`;
        if (seen.has(k)) return 'replayed';
        seen.set(k, expiresAtMs);
        return 'fresh';
      },
      hasNonce: async (nodeKey, nonce, nowMs) => (seen.get(`${nodeKey} ${nonce}`) ?? 0) > nowMs,
      nonceCount: async () => seen.size,
    };
    const opener = new SealedOpener(controlPrivate, nonces, { now: () => now });
    const typed = (e: unknown): boolean => e instanceof ControlError;
    return fuzzLoop(
      rng,
      iterations,
      onProgress,
      async (r, ctx) => {
        now += TICK_MS;
        const node = r.pick(nodes);
        const op = r.pick(OPS);
        const plain: Record<string, unknown> = {
          ...body(r),
          op: r.chance(0.9) ? op : r.pick(OPS),
          tsMs: now - r.int(1000),
          nonce: r.bytes(12).toString('hex'),
        };
        const kind = r.int(10);
        let plainText = JSON.stringify(plain);
        if (kind === 1) plainText = JSON.stringify(mutateJson(r, plain));
        else if (kind === 2) plainText = jsonText(r, randomJson(r), 0.3);
        const plainBytes = kind === 3 ? mutateBytes(r, Buffer.from(plainText)) : Buffer.from(plainText);
        if (kind === 3) plainText = plainBytes.toString('latin1');
        const box = sealBox(node.key, plainBytes);
        let req: unknown = { nodeKey: node.text, box: box.toString('base64') };
        if (kind === 4) req = mutateJson(r, req);
        else if (kind === 5) req = { nodeKey: node.text, box: mutateBytes(r, box).toString('base64') };
        else if (kind === 6) req = randomJson(r);
        else if (kind === 7) req = { nodeKey: keyToText(r.chance(0.5) ? Buffer.alloc(32) : r.bytes(32)), box: box.toString('base64') };
        ctx.input = { op, plaintext: plainText, request: req };
        // the primitive alone: any bytes open to null or a buffer
        const junk = r.chance(0.5) ? mutateBytes(r, box) : r.bytes(r.length(200));
        const opened = openBox(node.key, junk);
        check(opened === null || Buffer.isBuffer(opened), 'openBox returned neither null nor a buffer');
        check(openBox(node.key, box)?.equals(plainBytes), 'seal → open did not give the plaintext back');
        const got = await opener.open(req, op, (o) => o);
        await opener.accept(got); // as the server does for a request that changes something: a replay is then refused
        check(got.body.op === op, `opened a request sealed for ${String(got.body.op)} as ${op}`);
        if (kind === 0) {
          check(got.nodeKey === node.text, 'opened with another node key than the request named');
          check(JSON.stringify(got.body) === plainText, 'the opened body differs from the sealed one');
        }
        return 'accepted' as const;
      },
      { typedError: typed },
    );
  },
};
export default target;
