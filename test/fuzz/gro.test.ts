// The gro fuzz target (bench/fuzz/gro.ts) with a fixed seed: 3000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz gro: 3000 seeded inputs, none failing', async () => {
  await fuzzTarget('gro', 3000);
});
