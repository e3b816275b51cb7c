// The stun fuzz target (bench/fuzz/stun.ts) with a fixed seed: 10000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz stun: 10000 seeded inputs, none failing', async () => {
  await fuzzTarget('stun', 10000);
});
