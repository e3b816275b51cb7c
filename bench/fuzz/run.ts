// `npm run fuzz -- [--iterations N] [--http-iterations N] [--seed N] [--input-seed S] [target …]`
//
// Runs each fuzz target in a worker thread of its own, so a target stuck in a
// loop is stopped by the watchdog and named, and its heap is measured alone.
// Per target it prints a progress line every 10 %, then iterations, inputs
// accepted and rejected, the failing inputs (their seeds and the inputs
// themselves), and heapUsed after a forced GC at 10 % and at 100 % of the
// run: the growth between them must stay under the target's limit.
// `--input-seed S target` regenerates and runs one input (the seed printed
// with a failure) and prints it.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { randomInt } from 'node:crypto';
import type { FuzzStats } from './harness.js';
import { loadTarget, TARGETS } from './registry.js';
import { Rng } from './rng.js';

/** Pure parsers run this many inputs unless --iterations says otherwise. */
const DEFAULT_ITERATIONS = 100_000;
/** Server targets (a TLS or unix-socket request per input) run this many unless --http-iterations says otherwise. */
const DEFAULT_HTTP_ITERATIONS = 20_000;
/** Heap growth past which a target fails, unless the target sets its own. */
const DEFAULT_MEMORY_LIMIT_MIB = 16;
/** A worker that finished no input for this long is stuck (the per-input limit is 1 s for parsers, 10 s for servers). */
const WATCHDOG_MS = 30_000;

interface Job {
  name: string;
  seed: number;
  iterations: number;
  inputSeed: number | null;
  heartbeat: SharedArrayBuffer;
}

type FromWorker =
  | { type: 'start'; kind: 'pure' | 'http'; description: string; memoryLimitMiB: number | undefined }
  | { type: 'progress'; done: number; heapMiB?: number; at: 'ten' | 'end' | null }
  | { type: 'done'; stats: FuzzStats & { sampleInput?: string } }
  | { type: 'error'; message: string };

const MiB = 1024 * 1024;

function heapAfterGcMiB(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / MiB;
}

/** A generator whose every fork is the one input named by `seed`. */
class ReplayRng extends Rng {
  override fork(): Rng {
    return new Rng(this.seed);
  }
}

async function workerMain(job: Job): Promise<void> {
  const post = (m: FromWorker): void => parentPort!.postMessage(m);
  try {
    const target = await loadTarget(job.name);
    post({ type: 'start', kind: target.kind, description: target.description, memoryLimitMiB: target.memoryLimitMiB });
    const beat = new Int32Array(job.heartbeat);
    const iterations = job.inputSeed === null ? job.iterations : 1;
    const tenth = Math.max(1, Math.floor(iterations / 10));
    const onProgress = (done: number): void => {
      Atomics.store(beat, 0, done);
      if (done % tenth !== 0 && done !== iterations) return;
      const heapMiB = done === tenth || done === iterations ? heapAfterGcMiB() : undefined;
      if (done === tenth) post({ type: 'progress', done, at: 'ten', heapMiB });
      if (done === iterations) post({ type: 'progress', done, at: 'end', heapMiB });
      else if (done !== tenth) post({ type: 'progress', done, at: null });
    };
    const rng = job.inputSeed === null ? new Rng(job.seed) : new ReplayRng(job.inputSeed);
    const stats = await target.run(rng, iterations, onProgress);
    post({ type: 'done', stats });
  } catch (err) {
    post({ type: 'error', message: (err as Error)?.stack ?? String(err) });
  }
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}

function num(text: string | undefined, dflt: number, what: string): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`${what} must be a whole number ≥ 0, not "${text}"`);
    process.exit(2);
  }
  return n;
}

const f1 = (x: number): string => x.toFixed(1);

async function runOne(
  name: string,
  seed: number,
  pureIterations: number,
  httpIterations: number,
  inputSeed: number | null,
  memoryLimitOverride: number | null,
): Promise<boolean> {
  const heartbeat = new SharedArrayBuffer(4);
  const beat = new Int32Array(heartbeat);
  // the kind is known once the worker loaded the target; it decides the count, so ask first
  const kind = (await loadTarget(name)).kind;
  const iterations = kind === 'http' ? httpIterations : pureIterations;
  const job: Job = { name, seed, iterations, inputSeed, heartbeat };
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: job });
  const t0 = performance.now();
  let heapTen = NaN;
  let heapEnd = NaN;
  let limit = DEFAULT_MEMORY_LIMIT_MIB;
  console.log(
    `[${name}] ${inputSeed === null ? `${iterations} inputs, seed ${seed}` : `one input, input seed ${inputSeed}`}${kind === 'http' ? ' (a server on loopback: --http-iterations)' : ''}`,
  );
  const result = await new Promise<{ stats?: FuzzStats & { sampleInput?: string }; error?: string }>((resolve) => {
    let last = -1;
    let lastChange = Date.now();
    const dog = setInterval(() => {
      const done = Atomics.load(beat, 0);
      if (done !== last) {
        last = done;
        lastChange = Date.now();
        return;
      }
      if (Date.now() - lastChange < WATCHDOG_MS) return;
      clearInterval(dog);
      // fuzzLoop forks one child per input from the run's generator: the stuck input's seed is the next one
      const r = new Rng(seed);
      let s = 0;
      for (let i = 0; i <= done; i++) s = r.u32();
      void worker.terminate();
      resolve({ error: `hang: no input finished for ${WATCHDOG_MS / 1000} s after input ${done}; the stuck input is iteration ${done}, input seed ${s}` });
    }, 1000);
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'start') {
        limit = memoryLimitOverride ?? m.memoryLimitMiB ?? DEFAULT_MEMORY_LIMIT_MIB;
        console.log(`[${name}] ${m.description}`);
      } else if (m.type === 'progress') {
        if (m.at === 'ten') heapTen = m.heapMiB!;
        if (m.at === 'end') heapEnd = m.heapMiB!;
        const pct = Math.round((100 * m.done) / (inputSeed === null ? iterations : 1));
        const heap = m.heapMiB !== undefined ? `, heap after GC ${f1(m.heapMiB)} MiB` : '';
        console.log(`[${name}] ${pct} % ${m.done}/${inputSeed === null ? iterations : 1} in ${f1((performance.now() - t0) / 1000)} s${heap}`);
      } else if (m.type === 'done') {
        clearInterval(dog);
        resolve({ stats: m.stats });
      } else {
        clearInterval(dog);
        resolve({ error: m.message });
      }
    });
    worker.on('error', (err) => (clearInterval(dog), resolve({ error: err.stack ?? String(err) })));
    worker.on('exit', (code) => (clearInterval(dog), resolve({ error: `worker exited with code ${code} before finishing` })));
  });
  await worker.terminate();
  const secs = (performance.now() - t0) / 1000;
  if (!result.stats) {
    console.log(`[${name}] FAILED: ${result.error}`);
    return false;
  }
  const s = result.stats;
  const growth = heapEnd - heapTen;
  const memOk = inputSeed !== null || !(growth > limit);
  console.log(
    `${name}: ${s.iterations} iterations in ${f1(secs)} s (${Math.round(s.iterations / secs)}/s); accepted ${s.accepted}, rejected ${s.rejected}; ` +
      `crashes ${s.crashCount}; slowest input ${f1(s.slowestInputMs)} ms; heap after GC ${f1(heapTen)} MiB at 10 %, ${f1(heapEnd)} MiB at 100 % ` +
      `(growth ${growth >= 0 ? '+' : ''}${f1(growth)} MiB, limit ${limit}): ${s.crashCount === 0 && memOk ? 'ok' : 'FAILED'}`,
  );
  for (const c of s.crashes) {
    console.log(
      `  ${c.kind} at iteration ${c.iteration} (input seed ${c.inputSeed}; rerun: npm run fuzz -- --input-seed ${c.inputSeed} ${name}): ${c.message}`,
    );
    console.log(`    input: ${c.input}`);
  }
  if (inputSeed !== null && s.sampleInput) console.log(`  input: ${s.sampleInput}`);
  return s.crashCount === 0 && memOk;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const pure = num(arg(args, '--iterations'), DEFAULT_ITERATIONS, '--iterations');
  const http = num(arg(args, '--http-iterations'), DEFAULT_HTTP_ITERATIONS, '--http-iterations');
  const seed = num(arg(args, '--seed'), randomInt(0, 2 ** 31), '--seed') >>> 0;
  const inputSeedText = arg(args, '--input-seed');
  const inputSeed = inputSeedText === undefined ? null : num(inputSeedText, 0, '--input-seed') >>> 0;
  const memText = arg(args, '--memory-limit-mib');
  const mem = memText === undefined ? null : num(memText, 0, '--memory-limit-mib');
  const unknown = args.filter((a) => a.startsWith('--'));
  if (unknown.length) {
    console.error(`unknown option ${unknown[0]}: use --iterations, --http-iterations, --seed, --input-seed, --memory-limit-mib`);
    process.exit(2);
  }
  const names = args.length ? args : Object.keys(TARGETS);
  for (const n of names) if (!TARGETS[n]) console.error(`no fuzz target "${n}": the targets are ${Object.keys(TARGETS).join(', ')}`), process.exit(2);
  if (!(globalThis as { gc?: unknown }).gc) console.log('note: run node with --expose-gc (npm run fuzz does) for heap figures after a forced GC');
  let ok = true;
  for (const n of names) ok = (await runOne(n, seed, pure, http, inputSeed, mem)) && ok;
  console.log(ok ? 'fuzz: all targets passed' : 'fuzz: some targets FAILED');
  process.exitCode = ok ? 0 : 1;
}

if (isMainThread) void main();
else void workerMain(workerData as Job);
