// The faults, each as one scenario on a FaultLab: bring the path up, start a
// paced stream, apply the fault, measure how long the stream stalled and what
// path carries it afterwards, and check the stream arrived intact.
import type { LabNode } from '../../src/lab/topology.js';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type FaultLab, run, sleep, type Stream, within } from './lab.js';

export interface FaultRow {
  fault: string;
  promise: string;
  measured: string;
  ok: boolean;
}

export interface ScenarioOptions {
  /** the stream's rate, bits/s */
  rateBps: number;
  /** how long the recovery may take before the scenario gives up on it */
  recoverMs: number;
  log?: (m: string) => void;
}

export const DEFAULT_SCENARIO: ScenarioOptions = { rateBps: 8_000_000, recoverMs: 20_000 };

export type RebindKind = 'flush' | 'port' | 'address';

const REBIND_LABEL: Record<RebindKind, string> = {
  flush: "the NAT's conntrack flushed (both routers)",
  port: "the NAT's public port changes (mapping range moved + flush)",
  address: "the NAT's public address changes (.11 → .21, + flush)",
};

/** Starts a paced stream from `a` to `b` for `seconds`, and waits (up to 10 s) until its bytes flow. */
async function startStream(f: FaultLab, a: LabNode, b: LabNode, rateBps: number, seconds: number): Promise<Stream> {
  const s = await f.stream(a, b, rateBps, seconds);
  if ((await s.flowing(10_000)) === null) throw new Error(`the stream did not start: ${s.err}`);
  return s;
}

/** Waits up to `ms` for the stream to end: 'intact', or what was wrong with it. */
async function finishStream(s: Stream, ms: number): Promise<string> {
  try {
    await s.finish(ms);
    return 'intact';
  } catch (err) {
    return `NOT intact: ${(err as Error).message}`;
  }
}

/** A stream's end as the table's "measured" column says it. */
const intactText = (intact: string): string => (intact === 'intact' ? 'SHA-256 matches' : intact);

/**
 * Two easy-NAT nodes with a direct path and a stream between them; `apply` is the fault (on the sender's side).
 * Promise: direct again or relayed within 5 s of the fault, the stream intact.
 */
async function pathFault(f: FaultLab, label: string, apply: () => Promise<void>, o: ScenarioOptions, samePathOk = false): Promise<FaultRow> {
  const [a, b] = f.nodes as [LabNode, LabNode];
  const log = o.log ?? (() => {});
  const direct = await f.untilDirect(a, b, 20_000);
  if (direct === null) throw new Error(`no direct path before the fault (${await f.pathTo(a, b)})`);
  const seconds = Math.ceil((4000 + o.recoverMs + 3000) / 1000);
  const s = await startStream(f, a, b, o.rateBps, seconds);
  await sleep(2000);
  const before = await f.pathTo(a, b);
  const icmp = await f.icmp(a, b);
  await sleep(500);
  const t0 = Date.now();
  await apply();
  log(`${label}: fault applied (path was ${before})`);
  // the path that carries the stream afterwards: another direct one, or a relay
  const usable = await within(async () => {
    const p = await f.pathTo(a, b);
    return p !== 'none' && (p !== before || samePathOk);
  }, o.recoverMs);
  const after = await f.pathTo(a, b);
  const intact = await finishStream(s, o.recoverMs + 20_000);
  // the ICMP probe runs on to the end of the recovery window: a path that comes back and dies again (the node marked
  // offline at control seconds later) counts
  await sleep(Math.max(0, t0 + o.recoverMs - Date.now()));
  const tEnd = Date.now() - 1500;
  icmp.stop();
  const stall = s.longestStallMs(t0);
  const down = icmp.longestGapMs(t0, tEnd);
  const ok = down <= 5000 && intact === 'intact';
  log(`${label}: path ${before} → ${after}; changed after ${usable} ms; ICMP gap ${down} ms; TCP stall ${stall} ms; ${intact}`);
  return {
    fault: label,
    promise: 'direct again or relayed within 5 s; the stream intact',
    measured:
      `${before} → ${after}; no ICMP reply for ${(down / 1000).toFixed(1)} s; the stream stalled ${(stall / 1000).toFixed(1)} s (TCP's backoff on top); ` +
      `${intactText(intact)}`,
    ok,
  };
}

/** A NAT rebinding under the sender (both routers for a flush). Lab: easy, easy. */
export function natRebind(f: FaultLab, kind: RebindKind, o: ScenarioOptions = DEFAULT_SCENARIO): Promise<FaultRow> {
  const [a, b] = f.nodes as [LabNode, LabNode];
  const apply = async (): Promise<void> => {
    if (kind === 'flush') await Promise.all([f.flushConntrack(a), f.flushConntrack(b)]);
    else if (kind === 'port') await f.changePort(a);
    else await f.changeAddress(a, 21);
  };
  return pathFault(f, REBIND_LABEL[kind], apply, o, kind === 'flush');
}

/** The sender moves to another NAT'd site (new router, new LAN, new address). Lab: easy, easy. */
export function roam(f: FaultLab, o: ScenarioOptions = DEFAULT_SCENARIO): Promise<FaultRow> {
  const a = f.nodes[0]!;
  return pathFault(f, "roaming: the sender moves to another NAT'd site (new LAN address, new public address)", () => f.roam(a, 40), o, true);
}

/** What a restart must put back exactly once: routes of every table, rules, nftables tables, resolv.conf. */
async function netConfig(f: FaultLab, n: LabNode): Promise<string> {
  const parts = await Promise.all([
    f.inNs(n.ns, ['ip', 'route', 'show', 'table', 'all']),
    f.inNs(n.ns, ['ip', '-6', 'route', 'show', 'table', 'all']),
    f.inNs(n.ns, ['ip', 'rule']),
    f.inNs(n.ns, ['ip', '-6', 'rule']),
    f.inNs(n.ns, ['nft', 'list', 'tables']),
    f.inNs(n.ns, ['cat', '/etc/resolv.conf']),
  ]);
  // The kernel's own IPv6 link-local addresses are left out: a new TUN device gets a new random one, and a
  // namespace link's address appears only when its duplicate-address detection ends, which may fall between
  // the two snapshots. Neither is something a restart puts back.
  return parts
    .join('\n--\n')
    .split('\n')
    .filter((l) => !/^local fe80::[0-9a-f:]+ dev \S+ table local proto kernel/.test(l) && !/fe80::[0-9a-f:]+ dev meshctl0/.test(l))
    .join('\n');
}

/** kill -9 of the sender's daemon mid-stream, `up` again after `downMs`. Lab: easy, easy. */
export async function killDaemon(f: FaultLab, downMs: number, o: ScenarioOptions = DEFAULT_SCENARIO): Promise<FaultRow> {
  const [a, b] = f.nodes as [LabNode, LabNode];
  const log = o.log ?? (() => {});
  if ((await f.untilDirect(a, b, 20_000)) === null) throw new Error('no direct path before the fault');
  const before = await netConfig(f, a);
  const self = (await f.status(a)).self!;
  const s = await startStream(f, a, b, o.rateBps, Math.ceil((4000 + downMs + o.recoverMs) / 1000));
  await sleep(2000);
  const t0 = Date.now();
  process.kill(f.daemonPid(a), 'SIGKILL');
  await sleep(downMs);
  const up = await f.l.up(a);
  if (up.code !== 0) throw new Error(`up after kill -9: ${up.err.trim()}`);
  const flowing = await s.flowing(o.recoverMs);
  const restored = await within(async () => (await netConfig(f, a)) === before, 10_000, 250);
  const after = await netConfig(f, a);
  const me = (await f.status(a)).self!;
  const intact = await finishStream(s, o.recoverMs + 20_000);
  const stall = s.longestStallMs(t0);
  const same = me.nodeKey === self.nodeKey && me.ips.join() === self.ips.join();
  log(`kill -9: stall ${stall} ms; flowing ${flowing}; config restored ${restored}; identity same ${same}; ${intact}`);
  if (restored === null) log(`config before:\n${before}\nafter:\n${after}`);
  return {
    fault: `kill -9 of the sender's daemon, \`up\` ${(downMs / 1000).toFixed(0)} s later`,
    promise: 'the TCP connection survives; same key and address; routes, rules, nft tables and resolv.conf as before, once',
    measured:
      `longest stall ${(stall / 1000).toFixed(1)} s; ${intactText(intact)}; identity ${same ? 'same' : 'CHANGED'}; ` +
      `config ${restored === null ? 'DIFFERS' : 'identical'} after restart`,
    ok: intact === 'intact' && same && restored !== null && flowing !== null,
  };
}

/** 30 % of the relays' packets dropped for `lossMs`, then none. Lab: blocked (UDP out dropped: relay only), easy. */
export async function relayLoss(f: FaultLab, lossMs: number, percent: number, o: ScenarioOptions = DEFAULT_SCENARIO): Promise<FaultRow> {
  const [a, b] = f.nodes as [LabNode, LabNode];
  const log = o.log ?? (() => {});
  if ((await within(async () => (await f.pathTo(a, b)).startsWith('relay'), 20_000)) === null) throw new Error('no relayed path');
  const span = Math.max(5000, lossMs / 2);
  const s = await startStream(f, a, b, o.rateBps, Math.ceil((3000 + span + lossMs + span + 2000) / 1000));
  await sleep(1000);
  const t1 = Date.now();
  await sleep(span);
  const t2 = Date.now();
  for (const ns of Object.values(f.l.s.relayNs)) await f.loss(ns, percent);
  await sleep(lossMs);
  const t3 = Date.now();
  for (const ns of Object.values(f.l.s.relayNs)) await f.loss(ns, null);
  await sleep(span);
  const t4 = Date.now();
  const intact = await finishStream(s, o.recoverMs + 30_000);
  const mbit = (x: number) => (x / 1e6).toFixed(2);
  const [pre, during, post] = [s.rateBps(t1, t2), s.rateBps(t2, t3), s.rateBps(t3 + 1000, t4)];
  const stall = s.longestStallMs(t2);
  log(`relay loss: ${mbit(pre)} → ${mbit(during)} → ${mbit(post)} Mbit/s; longest stall ${stall} ms; ${intact}`);
  return {
    fault: `the relays' hosts drop ${percent} % of packets (nftables numgen) for ${(lossMs / 1000).toFixed(0)} s, then recover`,
    promise: 'relayed traffic keeps flowing, more slowly; full rate after',
    measured:
      `${mbit(pre)} Mbit/s before, ${mbit(during)} during, ${mbit(post)} after (stream paced at ${mbit(o.rateBps)}); ` +
      `longest stall ${(stall / 1000).toFixed(1)} s; ${intactText(intact)}`,
    ok: intact === 'intact' && during > 0 && post > 0.8 * pre,
  };
}

/** Everyone as it should be: both nodes Running, connected to control, each other online, every relay connected. */
async function converged(f: FaultLab): Promise<boolean> {
  const [a, b] = f.nodes as [LabNode, LabNode];
  for (const [n, peer] of [
    [a, b],
    [b, a],
  ] as const) {
    const st = await f.status(n);
    if (st.backendState !== 'Running' || !st.control.connected || !st.relays.every((r) => r.connected)) return false;
    const p = st.peers.find((x) => x.name === peer.name);
    if (!p?.online || p.path.kind === 'none') return false;
  }
  return true;
}

export type StopTarget = 'control' | 'relay' | 'peer daemon';

/** SIGSTOP of control, the home relay or the receiver's daemon for `stopMs`, then SIGCONT. Lab: easy, easy. */
export async function stopCont(f: FaultLab, target: StopTarget, stopMs: number, o: ScenarioOptions = DEFAULT_SCENARIO): Promise<FaultRow> {
  const [a, b] = f.nodes as [LabNode, LabNode];
  const log = o.log ?? (() => {});
  if ((await within(() => converged(f), 20_000, 250)) === null) throw new Error('not converged before the fault');
  const home = (await f.status(a)).homeRegion ?? 'east';
  const pid = target === 'control' ? f.l.s.pids.control! : target === 'relay' ? f.l.s.pids[`relay-${home}`]! : f.daemonPid(b);
  const s = await startStream(f, a, b, o.rateBps, Math.ceil((4000 + stopMs + o.recoverMs) / 1000));
  await sleep(1000);
  const t0 = Date.now();
  process.kill(pid, 'SIGSTOP');
  try {
    await sleep(stopMs);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  const conv = await within(() => converged(f), o.recoverMs + 30_000, 200);
  const intact = await finishStream(s, o.recoverMs + 30_000);
  const stall = s.longestStallMs(t0);
  log(`SIGSTOP ${target} ${stopMs} ms: converged ${conv} ms after SIGCONT; longest stall ${stall} ms; ${intact}`);
  return {
    fault: `SIGSTOP of ${target === 'relay' ? `the home relay (${home})` : target} for ${(stopMs / 1000).toFixed(0)} s, then SIGCONT`,
    promise: 'everyone converges without manual action; the stream intact',
    measured: `converged ${conv === null ? 'NOT within the wait' : `${(conv / 1000).toFixed(1)} s after SIGCONT`}; longest stall ${(stall / 1000).toFixed(1)} s; ${intactText(intact)}`,
    ok: conv !== null && intact === 'intact',
  };
}

/**
 * The sender's state dir (a small tmpfs FaultLab.smallDisk made before `up`) fills up mid-stream for `fullMs`.
 * Promise: the tunnel keeps running; the daemon keeps serving its API. Lab: easy, easy.
 */
export async function nodeDiskFull(f: FaultLab, fullMs: number, o: ScenarioOptions = DEFAULT_SCENARIO): Promise<FaultRow> {
  const [a, b] = f.nodes as [LabNode, LabNode];
  const log = o.log ?? (() => {});
  const disk = join(f.l.s.dir, a.name);
  if ((await f.untilDirect(a, b, 20_000)) === null) throw new Error('no direct path before the fault');
  const s = await startStream(f, a, b, o.rateBps, Math.ceil((3000 + fullMs + 3000) / 1000));
  await sleep(1000);
  const t0 = Date.now();
  await run('dd', ['if=/dev/zero', `of=${join(disk, 'filler')}`, 'bs=64k']);
  const states = new Set<string>();
  const until = Date.now() + fullMs;
  while (Date.now() < until) {
    states.add((await f.status(a).catch(() => ({ backendState: 'no answer' }))).backendState);
    await sleep(500);
  }
  rmSync(join(disk, 'filler'), { force: true });
  const intact = await finishStream(s, o.recoverMs + 20_000);
  const stall = s.longestStallMs(t0);
  const alive = (() => {
    try {
      process.kill(f.daemonPid(a), 0);
      return true;
    } catch {
      return false;
    }
  })();
  log(`node disk full: states ${[...states].join(',')}; stall ${stall} ms; daemon alive ${alive}; ${intact}`);
  return {
    fault: `a node's state dir full (small tmpfs) for ${(fullMs / 1000).toFixed(0)} s`,
    promise: 'tunnels keep running; the daemon keeps answering',
    measured: `status said ${[...states].join(', ')} throughout; longest stall ${(stall / 1000).toFixed(1)} s; daemon ${alive ? 'alive' : 'GONE'}; ${intactText(intact)}`,
    ok: intact === 'intact' && alive && states.size === 1 && states.has('Running') && stall <= 2000,
  };
}
