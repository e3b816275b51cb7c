// Runs one fuzz target from bench/fuzz with a fixed seed, in this process, and
// fails with every distinct failing input (seed, input, message) it found.
import assert from 'node:assert/strict';
import { loadTarget } from '../../bench/fuzz/registry.js';
import { Rng } from '../../bench/fuzz/rng.js';
import type { FuzzStats } from '../../bench/fuzz/harness.js';

/** The seed of every in-test run: the same inputs on every machine, so a failure here replays with `npm run fuzz -- --seed 20261203 NAME`. */
export const TEST_SEED = 20261203;

export async function fuzzTarget(name: string, iterations: number, o: { expectRejected?: boolean } = {}): Promise<FuzzStats> {
  const target = await loadTarget(name);
  const stats = await target.run(new Rng(TEST_SEED), iterations, () => {});
  const shown = stats.crashes
    .map((c) => `${c.kind} at iteration ${c.iteration} (input seed ${c.inputSeed}): ${c.message}\n  input: ${c.input.slice(0, 600)}`)
    .join('\n');
  assert.equal(stats.crashCount, 0, `${name}: ${stats.crashCount} of ${iterations} inputs failed; the first of each kind:\n${shown}`);
  assert.equal(stats.iterations, iterations);
  assert.ok(stats.accepted > 0, `${name}: no input was accepted, so the fuzzer never got past the first checks`);
  if (o.expectRejected ?? true) assert.ok(stats.rejected > 0, `${name}: no input was rejected, so no bad input was generated`);
  return stats;
}
