// The sealed fuzz target (bench/fuzz/sealed.ts) with a fixed seed: 5000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz sealed: 5000 seeded inputs, none failing', async () => {
  await fuzzTarget('sealed', 5000);
});
