// The relay-frames fuzz target (bench/fuzz/relay-frames.ts) with a fixed seed: 5000 inputs.
import { test } from 'node:test';
import { fuzzTarget } from './helper.js';

test('fuzz relay-frames: 5000 seeded inputs, none failing', async () => {
  await fuzzTarget('relay-frames', 5000);
});
