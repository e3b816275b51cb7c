// The portmap fuzz target (bench/fuzz/portmap.ts) with a fixed seed: 10000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz portmap: 10000 seeded inputs, none failing', async () => {
  await fuzzTarget('portmap', 10000);
});
