// The policy fuzz target (bench/fuzz/policy.ts) with a fixed seed: 10000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz policy: 10000 seeded inputs, none failing', async () => {
  await fuzzTarget('policy', 10000);
});
