// The gso fuzz target (bench/fuzz/gso.ts) with a fixed seed: 5000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz gso: 5000 seeded inputs, none failing', async () => {
  await fuzzTarget('gso', 5000);
});
