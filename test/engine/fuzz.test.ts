// Random and mutated input for every parser the engine exposes to the network
// or to the UAPI socket: each must either parse or fail with its own error
// class, never throw anything else and never hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../bench/fuzz/rng.js';
import { parseSetRequest } from '../../src/engine/device/uapi.js';
import { UapiError } from '../../src/engine/device/uapi-types.js';
import { classify, decodeCookieReply, decodeInitiation, decodeResponse, transportCounter, transportReceiver } from '../../src/engine/device/messages.js';
import { addressLength, claimedLength, destinationOffset, sourceOffset } from '../../src/engine/device/ippacket.js';

const ROUNDS = 20_000;
// the fuzz harness's seeded generator (bench/fuzz/rng.ts): the same inputs on every run
const rng = new Rng(20261203);
const randomInt = (lo: number, hi: number): number => lo + rng.int(hi - lo);
const randomBytes = (n: number): Buffer => rng.bytes(n);
const SEED_LINES = [
  `private_key=${'a'.repeat(64)}`,
  'listen_port=51820',
  'fwmark=7',
  'replace_peers=true',
  `public_key=${'b'.repeat(64)}`,
  'endpoint=[fd00::1]:51820',
  'endpoint=192.0.2.1:9',
  'allowed_ip=10.0.0.0/8',
  'allowed_ip=::/0',
  'persistent_keepalive_interval=25',
  'replace_allowed_ips=true',
  'protocol_version=1',
  'remove=true',
  'update_only=true',
];

function mutate(s: string): string {
  const chars = [...s];
  const n = randomInt(1, 4);
  for (let i = 0; i < n; i++) {
    const at = randomInt(0, chars.length + 1);
    const op = randomInt(0, 3);
    const c = String.fromCharCode(randomInt(0, 128));
    if (op === 0) chars.splice(at, 1);
    else if (op === 1) chars.splice(at, 0, c);
    else chars[at] = c;
  }
  return chars.join('');
}

test('UAPI set parser: random and mutated requests parse or fail with UapiError only', () => {
  let parsed = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const lines = Array.from({ length: randomInt(1, 8) }, () => SEED_LINES[randomInt(0, SEED_LINES.length)]!);
    const text = i % 4 === 0 ? randomBytes(randomInt(0, 200)).toString('latin1') : lines.map((l) => (randomInt(0, 3) === 0 ? mutate(l) : l)).join('\n');
    try {
      parseSetRequest(text);
      parsed++;
    } catch (err) {
      assert.ok(err instanceof UapiError, `non-UapiError for ${JSON.stringify(text)}: ${String(err)}`);
    }
  }
  assert.ok(parsed > 0, 'some inputs must parse, or the fuzzer tests nothing');
});

test('message classification and decoders never throw on what classify accepts', () => {
  for (let i = 0; i < ROUNDS; i++) {
    const b = randomBytes(randomInt(0, 200));
    if (b.length >= 4 && i % 2 === 0) {
      b[0] = randomInt(0, 6);
      b[1] = b[2] = b[3] = 0;
    }
    const kind = classify(b);
    if (kind === 'initiation') decodeInitiation(b);
    else if (kind === 'response') decodeResponse(b);
    else if (kind === 'cookie') decodeCookieReply(b);
    else if (kind === 'transport') transportReceiver(b) + transportCounter(b);
  }
});

test('inner IP header readers stay inside the buffer', () => {
  for (let i = 0; i < ROUNDS; i++) {
    const b = randomBytes(randomInt(0, 80));
    if (b.length > 0 && i % 2 === 0) b[0] = (i % 4 === 0 ? 0x45 : 0x60) | (b[0]! & 0x0f);
    const len = claimedLength(b);
    assert.ok(len === -1 || (len > 0 && len <= b.length));
    const d = destinationOffset(b);
    const s = sourceOffset(b);
    assert.equal(d >= 0, s >= 0);
    // an accepted packet holds both addresses whole
    if (d >= 0) assert.ok(d + addressLength(b) <= b.length && s + addressLength(b) <= b.length);
  }
});
