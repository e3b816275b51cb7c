// The dns fuzz target (bench/fuzz/dns.ts) with a fixed seed: 5000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz dns: 5000 seeded inputs, none failing', async () => {
  await fuzzTarget('dns', 5000);
});
