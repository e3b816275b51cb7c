// The status text in pieces: joined, the bytes JSON.stringify writes, compact and pretty, with and without peers and
// fields around them; every piece of a large status stays far below V8's large-object size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusPieces } from '../../src/daemon/status-pieces.js';

const peer = (i: number) => ({ name: `node${i}`, ips: [`100.64.${i >> 8}.${i & 255}`], online: i % 3 !== 0, tags: ['tag:a'], rx: i * 1000 });

/** Each peer's text as the daemon keeps it: pretty, nested one level (every line after the first indented by 4). */
const itemText = (p: object, pretty: boolean) => (pretty ? JSON.stringify(p, null, 2).replace(/\n/g, '\n    ') : JSON.stringify(p));

test('status pieces joined are JSON.stringify of the whole status, compact and pretty', () => {
  for (const n of [0, 1, 2, 7, 500]) {
    for (const [head, tail] of [
      [
        { version: 'v', self: { name: 'me' } },
        { health: ['x'], counters: { a: 1 } },
      ],
      [{}, { health: [] }],
      [{ version: 'v' }, {}],
      [{}, {}],
    ] as [Record<string, unknown>, Record<string, unknown>][]) {
      const peers = Array.from({ length: n }, (_, i) => peer(i));
      const whole = { ...head, peers, ...tail };
      for (const pretty of [false, true]) {
        const text = statusPieces(
          head,
          peers.map((p) => itemText(p, pretty)),
          tail,
          pretty,
          1000,
        ).join('');
        assert.equal(text, JSON.stringify(whole, null, pretty ? 2 : undefined), `${n} peers, pretty ${pretty}, head ${Object.keys(head)}`);
      }
    }
  }
});

test('a status of 5,000 peers comes in pieces near the asked size, none in V8 large-object territory', () => {
  const peers = Array.from({ length: 5000 }, (_, i) => peer(i));
  const pieces = statusPieces(
    { version: 'v' },
    peers.map((p) => itemText(p, true)),
    { health: [] },
    true,
    32 * 1024,
  );
  const total = pieces.reduce((n, p) => n + p.length, 0);
  assert.ok(total > 500_000, `the text is ${total} characters`);
  assert.ok(pieces.length >= total / (33 * 1024), `${pieces.length} pieces`);
  // a piece ends once it reached the size: it is over by at most one peer's text
  for (const p of pieces) assert.ok(p.length < 32 * 1024 + 1024, `a piece of ${p.length} characters`);
});
