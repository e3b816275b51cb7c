// What the control benches that simulate many nodes share: integer options,
// polling with a deadline, percentiles, and the network they seed (users,
// who is in group:eng, each node's owner or tag, the access policy), so that
// control-load and control-daemon measure the same network.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/** The largest network the benches seed; each simulated node holds one descriptor (its map stream), see checkFdLimit. */
export const MAX_NODES = 12_000;
/**
 * Descriptors a bench process needs beyond one per node: streams being opened (their key request and map stream share
 * one connection), churn requests on connections of their own, the control child's pipe, the database. 1,000 nodes
 * peaked at 1,067 in a join and churn.
 */
const SPARE_FDS = 512;

/** Stops the bench, with the fix, when this process's descriptor limit cannot hold `nodes` simulated nodes. */
export function checkFdLimit(nodes: number): void {
  const need = nodes + SPARE_FDS;
  const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const soft = line === null || line[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(line[1]);
  if (soft < need) throw new Error(`${nodes} nodes need ${need} open files and the limit is ${soft}: run it under \`ulimit -n ${need}\``);
}
/** Streams opened at once while connecting. */
export const CONNECT_CONCURRENCY = 64;
/** Silence after which a simulated map stream gives up (the server sends a keepalive every 3 s; the generator is busy). */
export const STREAM_IDLE_MS = 300_000;

/** `--name N` from argv: an integer in [min, max], else `dflt`; anything else stops the bench with the range. */
export function intArg(name: string, dflt: number, min: number, max: number): number {
  const i = process.argv.indexOf(name);
  const v = i < 0 ? dflt : Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name}: an integer ${min}-${max}`);
  return v;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Opens `items` in order at `perSec` a second from `startMs` (each a node
 * coming online), at most CONNECT_CONCURRENCY at once; `pace.opened` counts
 * those started, for progress lines.
 */
export async function openPaced<T>(items: T[], perSec: number, startMs: number, open: (x: T) => Promise<void>, pace = { opened: 0 }): Promise<void> {
  await Promise.all(
    Array.from({ length: CONNECT_CONCURRENCY }, async () => {
      while (pace.opened < items.length) {
        const i = pace.opened++;
        const due = startMs + (i * 1000) / perSec;
        if (due > Date.now()) await sleep(due - Date.now());
        await open(items[i]!);
      }
    }),
  );
}

/** Polls `cond` every `pollMs` until it holds; throws naming `what` after `deadlineMs`. */
export async function until(cond: () => boolean, what: string, deadlineMs: number, pollMs = 5): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > deadlineMs) throw new Error(`${what}: not within ${deadlineMs / 1000} s`);
    await sleep(pollMs);
  }
}

/** The p-th percentile of `xs` (nearest rank); NaN for none. */
export function pct(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** The 1, 5 and 15 minute load averages, for the line a figure is printed on. */
export const loadAverage = (): string =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

export const userName = (u: number): string => `user${u}`;

/**
 * The simulated network of `nodes` nodes: nodes/8 users (at least 4) with 7
 * nodes each on average; group:admins is user0 and user1; group:eng is every
 * fourth user from user2; 5% of the nodes are tag:server and 2% tag:nas.
 */
export class LoadNetwork {
  readonly users: number;
  readonly eng: number[];

  constructor(readonly nodes: number) {
    this.users = Math.max(4, Math.floor(nodes / 8));
    this.eng = Array.from({ length: this.users }, (_, u) => u).filter((u) => u >= 2 && u % 4 === 2);
  }

  /** Node i's owner or tag. */
  identity(i: number): { user: string | null; tags: string[] } {
    if (i % 20 === 19) return { user: null, tags: ['tag:server'] };
    if (i % 50 === 23) return { user: null, tags: ['tag:nas'] };
    return { user: userName(i % this.users), tags: [] };
  }

  /**
   * The policy: group:eng reaches tag:server on 443 and 22, the admins reach
   * everything, each user's nodes see each other; `more` adds rules and fields.
   */
  policy(more: { acls?: object[]; tests?: object[] } = {}): string {
    return JSON.stringify({
      groups: { 'group:admins': [userName(0), userName(1)], 'group:eng': this.eng.map(userName) },
      tagOwners: { 'tag:server': ['group:admins'], 'tag:nas': ['group:admins'] },
      acls: [
        { action: 'accept', src: ['group:eng'], dst: ['tag:server:443,22'] },
        { action: 'accept', src: ['group:admins'], dst: ['*:*'] },
        { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] },
        ...(more.acls ?? []),
      ],
      ...(more.tests ? { tests: more.tests } : {}),
    });
  }
}
