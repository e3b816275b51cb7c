// The disco fuzz target (bench/fuzz/disco.ts) with a fixed seed: 5000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz disco: 5000 seeded inputs, none failing', async () => {
  await fuzzTarget('disco', 5000);
});
