// What one seal of a 1,420-byte packet costs, call by call, through koffi into the OpenSSL linked into Node (as
// src/engine/device/aead.ts calls it), beside a koffi call that does nothing: how much of the seal is the cipher and
// how much the per-call path. Compare with `openssl speed -evp chacha20-poly1305 -bytes 1424` (the cipher alone).
// usage: node dist/bench/evp-calls.js
import { koffi } from '../src/util/koffi.js';
import { median } from './procstat.js';

const PACKET_BYTES = 1420;
const N = 200_000;
const ROUNDS = 5;
const lib = koffi.load(null as unknown as string);
const cipher = lib.func('void *EVP_chacha20_poly1305()');
const ctxNew = lib.func('void *EVP_CIPHER_CTX_new()');
const encInit = lib.func('int EVP_EncryptInit_ex(void *, void *, void *, void *, void *)');
const encUpdate = lib.func('int EVP_EncryptUpdate(void *, void *, void *, void *, int)');
const encFinal = lib.func('int EVP_EncryptFinal_ex(void *, void *, void *)');
const ctrl = lib.func('int EVP_CIPHER_CTX_ctrl(void *, int, int, void *)');
const abs = lib.func('int abs(int)');
const ctx = ctxNew();
encInit(ctx, cipher(), null, null, null);
const key = Buffer.alloc(32, 1);
const nonce = Buffer.alloc(12);
const outl = new Int32Array(1);
const sink = Buffer.alloc(32);
const tag = Buffer.alloc(16);
const buf = new Uint8Array(2048);

function nsPerCall(fn: (i: number) => void): number {
  for (let i = 0; i < 20_000; i++) fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / N;
}

const steps: [string, (i: number) => void][] = [
  ['koffi call doing nothing (abs)', (i) => abs(i)],
  ['EVP_EncryptInit_ex (key, nonce)', (i) => ((nonce[4] = i & 0xff), encInit(ctx, null, null, key, nonce))],
  [`EVP_EncryptUpdate (${PACKET_BYTES} B)`, () => encUpdate(ctx, buf, outl, buf, PACKET_BYTES)],
  ['EVP_EncryptFinal_ex', () => encFinal(ctx, sink, outl)],
  ['EVP_CIPHER_CTX_ctrl (get tag)', () => ctrl(ctx, 0x10, 16, tag)],
  [
    'the four together (one seal)',
    (i) => {
      nonce[4] = i & 0xff;
      encInit(ctx, null, null, key, nonce);
      encUpdate(ctx, buf, outl, buf, PACKET_BYTES);
      encFinal(ctx, sink, outl);
      ctrl(ctx, 0x10, 16, tag);
    },
  ],
];
const results = new Map<string, number[]>(steps.map(([name]) => [name, []]));
for (let r = 0; r < ROUNDS; r++) for (const [name, fn] of steps) results.get(name)!.push(nsPerCall(fn));
for (const [name, xs] of results) console.log(`${name}: ${median(xs).toFixed(0)} ns (${xs.map((x) => x.toFixed(0)).join(' ')})`);
