// Waiting for two lab nodes to have a direct path to each other, by reading
// `status --json` only: `meshctl ping` would send disco pings of its own to
// every candidate, which is exactly the traffic that poisons a bare NAT's
// conntrack table (docs/nat.md), so a measurement must not add any.
import type { Lab } from '../../src/lab/lab.js';
import type { LabNode } from '../../src/lab/topology.js';
import type { Status } from '../../src/localapi/types.js';
import { sh } from './netns.js';

/** Between two reads of both nodes' status: often enough for ~0.1 s resolution, rare enough for 2 shared cores. */
const POLL_MS = 100;

export async function labStatus(l: Lab, n: LabNode): Promise<Status | null> {
  const r = await sh(process.execPath, [l.s.bin, '--socket', l.socket(n), 'status', '--json'], 20_000);
  if (r.code !== 0) return null;
  try {
    return JSON.parse(r.stdout) as Status;
  } catch {
    return null;
  }
}

/** `from`'s path to `to` as status shows it ('none' while unknown). */
export async function labPath(l: Lab, from: LabNode, to: LabNode): Promise<Status['peers'][number]['path'] | { kind: 'none' }> {
  return (await labStatus(l, from))?.peers.find((p) => p.name === to.name)?.path ?? { kind: 'none' };
}

const trustedDirect = (p: { kind: string; trusted?: boolean }): boolean => p.kind === 'direct' && p.trusted === true;

/**
 * Polls both nodes until each has a trusted direct path to the other; returns the ms from `since` (a
 * performance.now() value) to when both did, or null after `timeoutMs`.
 */
export async function untilBothDirect(l: Lab, a: LabNode, b: LabNode, since: number, timeoutMs: number): Promise<number | null> {
  const deadline = since + timeoutMs;
  while (performance.now() < deadline) {
    const [pa, pb] = await Promise.all([labPath(l, a, b), labPath(l, b, a)]);
    if (trustedDirect(pa) && trustedDirect(pb)) return performance.now() - since;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return null;
}
