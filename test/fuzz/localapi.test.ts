// The localapi fuzz target (bench/fuzz/localapi.ts) with a fixed seed: 3000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz localapi: 3000 seeded inputs, none failing', async () => {
  await fuzzTarget('localapi', 3000);
});
