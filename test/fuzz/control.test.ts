// The control fuzz target (bench/fuzz/control.ts) with a fixed seed: 3000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz control: 3000 seeded inputs, none failing', async () => {
  await fuzzTarget('control', 3000);
});
