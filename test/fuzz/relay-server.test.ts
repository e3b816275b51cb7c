// The relay-server fuzz target (bench/fuzz/relay-server.ts) with a fixed seed: 1000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz relay-server: 1000 seeded inputs, none failing', async () => {
  await fuzzTarget('relay-server', 1000);
});
