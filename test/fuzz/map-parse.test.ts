// The map-parse fuzz target (bench/fuzz/map-parse.ts) with a fixed seed: 10000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz map-parse: 10000 seeded inputs, none failing', async () => {
  await fuzzTarget('map-parse', 10000);
});
