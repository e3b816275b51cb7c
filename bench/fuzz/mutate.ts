// Mutations of valid inputs, so the fuzzer gets past the first checks of a
// parser and reaches the code behind them: bytes (bit flips, interesting
// values, truncation, extension, splicing with another valid input) and JSON
// values (type swaps, dropped and added keys, odd strings and numbers).
import type { Rng } from './rng.js';

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x40, 0x45, 0x60, 0x06, 0x11];
const INTERESTING_16 = [0, 1, 0x7fff, 0x8000, 0xffff, 20, 40, 60, 1280, 1500, 65535 - 20];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x2112a442, 0x10000, 65 * 1024 + 69];

/** One to four byte-level mutations of `input` (a new buffer). `donor` is another valid input to splice in. */
export function mutateBytes(rng: Rng, input: Uint8Array, donor?: Uint8Array): Buffer {
  let b = Buffer.from(input);
  const ops = rng.range(1, 4);
  for (let k = 0; k < ops; k++) {
    const op = rng.int(10);
    const at = rng.int(b.length + 1);
    switch (op) {
      case 0:
      case 1:
        if (b.length) b[rng.int(b.length)]! ^= 1 << rng.int(8);
        break;
      case 2:
        if (b.length) b[rng.int(b.length)] = rng.pick(INTERESTING_8);
        break;
      case 3:
        if (b.length >= 2) b.writeUInt16BE(rng.pick(INTERESTING_16), rng.int(b.length - 1));
        break;
      case 4:
        if (b.length >= 4) b.writeUInt32BE(rng.pick(INTERESTING_32), rng.int(b.length - 3));
        break;
      case 5:
        b = b.subarray(0, rng.int(b.length + 1));
        break;
      case 6:
        b = Buffer.concat([b, rng.bytes(rng.length(64))]);
        break;
      case 7: {
        const n = rng.int(Math.min(32, b.length - at) + 1);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
        break;
      }
      case 8:
        b = Buffer.concat([b.subarray(0, at), rng.bytes(rng.length(16)), b.subarray(at)]);
        break;
      default: {
        if (!donor || donor.length === 0) break;
        const from = rng.int(donor.length);
        const piece = donor.subarray(from, from + rng.range(1, donor.length - from));
        b = rng.bool() ? Buffer.concat([b.subarray(0, at), piece]) : Buffer.concat([b.subarray(0, at), piece, b.subarray(at)]);
      }
    }
  }
  return b;
}

/** Random bytes of up to `max` length. */
export function randomBytes(rng: Rng, max: number): Buffer {
  return rng.bytes(rng.length(max));
}

const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  'null',
  '0',
  '-1',
  '1e309',
  '::',
  '0.0.0.0',
  '[::1]:0',
  '__proto__',
  'constructor',
  '\u202e',
  '\ud800',
  'é',
  '%00',
  '../..',
  'mskey-',
  'a'.repeat(300),
];
const ODD_NUMBERS = [0, -0, -1, 1, 0.5, 65535, 65536, 2 ** 31, 2 ** 32, 2 ** 53 + 1, -(2 ** 53), 1e308, Number.MIN_VALUE];

/** Sets an own property, as JSON.parse makes it: `o['__proto__'] = v` would set the prototype instead. */
function setKey(o: object, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** A random JSON value, nested at most `depth` deep. */
export function randomJson(rng: Rng, depth = 3): unknown {
  const kind = rng.int(depth > 0 ? 7 : 5);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.bool();
    case 2:
      return rng.chance(0.5) ? rng.pick(ODD_NUMBERS) : rng.range(-1000, 100000);
    case 3:
      return rng.chance(0.5) ? rng.pick(ODD_STRINGS) : rng.bytes(rng.length(24)).toString('latin1');
    case 4:
      return rng.bytes(rng.length(12)).toString('hex');
    case 5:
      return Array.from({ length: rng.length(5) }, () => randomJson(rng, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      const n = rng.length(5);
      for (let i = 0; i < n; i++) setKey(o, rng.chance(0.3) ? rng.pick(ODD_STRINGS) : `k${rng.int(8)}`, randomJson(rng, depth - 1));
      return o;
    }
  }
}

/** A value of another JSON type than `v`. */
function swapType(rng: Rng, v: unknown): unknown {
  const options: unknown[] = [null, true, 0, -1, 1e21, '', typeof v === 'object' ? (JSON.stringify(v) ?? '') : String(v), [], [v], {}, { v }];
  if (typeof v === 'number') options.push(String(v), v + 0.5, -v);
  return rng.pick(options);
}

/** One to three structural mutations of a JSON value (a deep copy). */
export function mutateJson(rng: Rng, value: unknown): unknown {
  let root = structuredClone(value);
  const ops = rng.range(1, 3);
  for (let k = 0; k < ops; k++) {
    // walk to a random container and act on one of its members
    const path: Array<Record<string, unknown> | unknown[]> = [];
    let cur: unknown = root;
    while (cur !== null && typeof cur === 'object' && (path.length === 0 || rng.chance(0.5))) {
      path.push(cur as Record<string, unknown>);
      const keys = Object.keys(cur);
      if (!keys.length) break;
      cur = (cur as Record<string, unknown>)[rng.pick(keys)];
    }
    const parent = path[path.length - 1];
    if (!parent) {
      root = rng.chance(0.5) ? swapType(rng, root) : randomJson(rng);
      continue;
    }
    const keys = Object.keys(parent);
    const key = keys.length ? rng.pick(keys) : 'k0';
    const op = rng.int(6);
    if (op === 0) delete (parent as Record<string, unknown>)[key];
    else if (op === 1) setKey(parent, key, swapType(rng, (parent as Record<string, unknown>)[key]));
    else if (op === 2) setKey(parent, key, randomJson(rng, 2));
    else if (op === 3) setKey(parent, rng.pick(ODD_STRINGS), randomJson(rng, 1));
    else if (op === 4) setKey(parent, key, rng.pick(ODD_STRINGS));
    else setKey(parent, key, rng.pick(ODD_NUMBERS));
  }
  return root;
}

/** JSON text of `value`, sometimes damaged at the byte level (so the JSON parser's errors are reached too). */
export function jsonText(rng: Rng, value: unknown, damage = 0.1): string {
  const text = JSON.stringify(value) ?? 'null';
  return rng.chance(damage) ? mutateBytes(rng, Buffer.from(text)).toString('latin1') : text;
}
