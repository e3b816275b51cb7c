// The fuzz harness's shape: a target is `(rng, iterations, onProgress) =>
// Promise<FuzzStats>`. `fuzzLoop` runs one generated input per iteration,
// each from its own seed (forked from the run's), so a failing input is
// reproduced from that seed alone (`npm run fuzz -- --input-seed S target`).
// An input fails when it throws anything but the component's own typed
// error, breaks an invariant, or takes longer than the per-input bound.
import type { Rng } from './rng.js';

export interface Crash {
  /** the seed that regenerates this input */
  inputSeed: number;
  iteration: number;
  kind: 'exception' | 'invariant' | 'slow' | 'hang' | 'server-error';
  message: string;
  /** the input as hex or JSON, cut to MAX_INPUT_SHOWN_CHARS */
  input: string;
}

export interface FuzzStats {
  iterations: number;
  accepted: number;
  rejected: number;
  /** every failing input counted; the first of each distinct failure kept in `crashes` */
  crashCount: number;
  crashes: Crash[];
  slowestInputMs: number;
  /** the input of a one-input run (a replay by --input-seed), to print */
  sampleInput?: string;
}

export type Progress = (done: number) => void;
export type FuzzTargetRun = (rng: Rng, iterations: number, onProgress: Progress) => Promise<FuzzStats>;

export interface FuzzTarget {
  name: string;
  /** what is fuzzed and what is checked, one line */
  description: string;
  /** 'http': a real server per run, slower per input (the runner's default iterations are lower) */
  kind: 'pure' | 'http';
  run: FuzzTargetRun;
  /** heap growth (MiB, after a forced GC, 10 % → 100 % of the run) past which the target fails */
  memoryLimitMiB?: number;
}

/** An input broke a property the component promises (lengths, checksums, round trips, no 5xx). */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new InvariantError(typeof message === 'string' ? message : message());
}

/** Inputs are shown at most this long: enough to reproduce by eye, short enough to print. */
const MAX_INPUT_SHOWN_CHARS = 4096;
/** Distinct failures kept per run; further inputs failing the same way are only counted. */
const MAX_DISTINCT_CRASHES = 20;
/** A pure parser gets this long per input before the input counts as a hang (a 64 KiB packet takes well under 1 ms). */
export const PURE_INPUT_LIMIT_MS = 1000;
/** A request to a loopback server gets this long (TLS set-up, SQLite write, a busy 2-core machine). */
export const HTTP_INPUT_LIMIT_MS = 10_000;

/** Buffers become "hex:…" strings (JSON.stringify would print Buffer.toJSON's byte arrays). */
function hexBuffers(v: unknown): unknown {
  if (v instanceof Uint8Array) return `hex:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
  if (Array.isArray(v)) return v.map(hexBuffers);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hexBuffers(x)]));
  return v;
}

export function shownInput(input: unknown): string {
  let s: string;
  if (typeof input === 'string') s = JSON.stringify(input);
  else if (input instanceof Uint8Array) s = hexBuffers(input) as string;
  else {
    try {
      s = JSON.stringify(hexBuffers(input)) ?? String(input);
    } catch {
      s = String(input);
    }
  }
  return s.length > MAX_INPUT_SHOWN_CHARS ? `${s.slice(0, MAX_INPUT_SHOWN_CHARS)}… (${s.length} chars)` : s;
}

/** What one input did: accepted (parsed, answered 2xx) or rejected (the typed error, null, a 4xx). */
export type Outcome = 'accepted' | 'rejected';

/** The input being tried, set by the step before it runs the code under test so a failure can show it. */
export interface StepContext {
  input: unknown;
}

export interface LoopOptions {
  /** errors that are the component's own refusal of bad input */
  typedError?: (err: unknown) => boolean;
  inputLimitMs?: number;
}

function signature(c: Pick<Crash, 'kind' | 'message'>): string {
  // digits vary between inputs that fail the same way
  return `${c.kind}:${c.message.split('\n')[0]!.replace(/\d+/g, '#').slice(0, 120)}`;
}

export function newStats(): FuzzStats {
  return { iterations: 0, accepted: 0, rejected: 0, crashCount: 0, crashes: [], slowestInputMs: 0 };
}

export function recordCrash(stats: FuzzStats, seen: Set<string>, crash: Crash): void {
  stats.crashCount++;
  const sig = signature(crash);
  if (seen.has(sig) || stats.crashes.length >= MAX_DISTINCT_CRASHES) return;
  seen.add(sig);
  stats.crashes.push(crash);
}

/**
 * Runs `step` once per iteration with a fresh child generator. A step returns
 * its outcome (or a promise of it); throwing a typed error counts as rejected;
 * anything else thrown, or a step slower than the limit, is a crash.
 */
export async function fuzzLoop(
  rng: Rng,
  iterations: number,
  onProgress: Progress,
  step: (r: Rng, ctx: StepContext) => Outcome | Promise<Outcome>,
  o: LoopOptions = {},
): Promise<FuzzStats> {
  const stats = newStats();
  const seen = new Set<string>();
  const limit = o.inputLimitMs ?? PURE_INPUT_LIMIT_MS;
  for (let i = 0; i < iterations; i++) {
    const r = rng.fork();
    const ctx: StepContext = { input: undefined };
    const t0 = performance.now();
    try {
      let out = step(r, ctx);
      if (out instanceof Promise) out = await withLimit(out, limit);
      if (out === 'accepted') stats.accepted++;
      else stats.rejected++;
    } catch (err) {
      if (err instanceof HangError) {
        recordCrash(stats, seen, { inputSeed: r.seed, iteration: i, kind: 'hang', message: err.message, input: shownInput(ctx.input) });
      } else if (!(err instanceof InvariantError) && o.typedError?.(err)) stats.rejected++;
      else {
        const e = err as Error;
        const kind = err instanceof InvariantError ? (err instanceof ServerError ? 'server-error' : 'invariant') : 'exception';
        const message =
          kind === 'exception' ? `${e?.name ?? typeof err}: ${e?.message ?? String(err)}\n${(e?.stack ?? '').split('\n').slice(1, 4).join('\n')}` : e.message;
        recordCrash(stats, seen, { inputSeed: r.seed, iteration: i, kind, message, input: shownInput(ctx.input) });
      }
    }
    const ms = performance.now() - t0;
    if (ms > stats.slowestInputMs) stats.slowestInputMs = ms;
    if (ms > limit)
      recordCrash(stats, seen, {
        inputSeed: r.seed,
        iteration: i,
        kind: 'slow',
        message: `input took ${ms.toFixed(0)} ms (limit ${limit} ms)`,
        input: shownInput(ctx.input),
      });
    stats.iterations++;
    if (iterations === 1) stats.sampleInput = shownInput(ctx.input);
    onProgress(i + 1);
  }
  return stats;
}

/** A server answered 5xx (or broke its own protocol) for an input. */
export class ServerError extends InvariantError {}

class HangError extends Error {}

function withLimit<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new HangError(`no answer within ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** Throws from the run if the process saw an uncaught exception or rejection while the target ran (a server crash). */
export function watchUncaught(): { take(): string | null; stop(): void } {
  const seen: string[] = [];
  const onErr = (err: unknown): void => void seen.push(`${(err as Error)?.name}: ${(err as Error)?.message ?? String(err)}`);
  process.on('uncaughtException', onErr);
  process.on('unhandledRejection', onErr);
  return {
    take: () => (seen.length ? seen.splice(0).join('; ') : null),
    stop: () => {
      process.off('uncaughtException', onErr);
      process.off('unhandledRejection', onErr);
    },
  };
}
