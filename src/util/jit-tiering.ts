// How soon V8 compiles the data path with its optimising compiler. V8 counts
// the bytecode a function has run and optimises it after 67,584 bytes' worth
// (its --interrupt-budget); a per-packet function of a few hundred bytes of
// bytecode stays in the interpreter or baseline code for ~1,000 packets, and
// at ping rates some never get there (docs/performance.md, "Compiled early").
// Code in the interpreter touches far more memory per packet (bytecode
// handlers, inline caches), which is what a hop costs after the CPU sat idle.
// With a 4,096-byte budget the hot path is optimised within tens of packets:
// warm RTT −9 % in six interleaved runs. The price: compile work during a new
// tunnel's first ~100 packets (a worse p99 for them) and a little more
// compiled code. Set once an engine exists, so the CLI and start-up code keep
// V8's defaults.
import { setFlagsFromString } from 'node:v8';
import { jitDefaults } from './knobs.js';

export const DATA_PATH_INTERRUPT_BUDGET = 4096;

let applied = false;

/** Idempotent; MESHCTL_JIT_DEFAULTS=1 keeps V8's own budget (to compare). */
export function tuneJitForDataPath(env: NodeJS.ProcessEnv = process.env): boolean {
  if (applied || jitDefaults(env)) return false;
  setFlagsFromString(`--interrupt-budget=${DATA_PATH_INTERRUPT_BUDGET}`);
  applied = true;
  return true;
}
