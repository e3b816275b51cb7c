// Subnet routes and exit nodes at the control server. A node advertises
// prefixes (and the exit flag); an admin approves (node, prefix) pairs, also
// before the node advertises them. A route is active while it is both
// advertised and approved. For each active prefix one router is primary: the
// current one stays while it is online; when it goes offline the online router
// with the lowest node id takes over, and the old one does not get it back
// when it returns (no flapping). Only the primary has the prefix in its
// allowedIps. An exit node is the approval of 0.0.0.0/0 and ::/0 together; its
// default routes never enter allowedIps (a client adds them for the exit node
// it chose).
import { lookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { IPV4_PREFIX } from './addresses.js';
import type { RouteRow } from './admin-rows.js';
import { ControlError } from './protocol.js';
import type { Registry } from './registry.js';
import type { NodeRecord, RouteApprovalRecord, StoreTx } from './store.js';
import { isDefaultRoute, subnetRouteProblem } from '../netmap/routes.js';
import { MAX_NODE_ROUTES } from '../netmap/types.js';
import { hostPrefix, parseIp, parsePrefix, prefixesOverlap, type IpAddress, type IpPrefix } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';

/** The two prefixes whose approval makes a node an exit node. */
export const EXIT_PREFIXES = ['0.0.0.0/0', '::/0'] as const;
/** Approvals kept per node: its subnet routes' bound plus the two exit prefixes; pre-approvals count too. */
export const MAX_APPROVALS_PER_NODE = MAX_NODE_ROUTES + EXIT_PREFIXES.length;
/** The meta key under which the server keeps the addresses an approved route may not capture. */
const TARGETS_META_KEY = 'route_protected_targets';

const bad = (message: string): never => {
  throw new ControlError('BAD_REQUEST', message);
};

/** The network's mesh prefixes as typed values. */
export function meshPrefixes(ipv6Prefix: string): IpPrefix[] {
  return [parsePrefix(IPV4_PREFIX), parsePrefix(ipv6Prefix)];
}

/** What one node has active: approved ∩ advertised routes, and whether it is an approved, advertising exit node. */
export interface ActiveRoutes {
  routes: string[];
  exitNode: boolean;
}

/** Each node's active routes, from one read of the approvals. */
export function activeRoutes(approvals: readonly RouteApprovalRecord[], nodes: readonly NodeRecord[]): Map<number, ActiveRoutes> {
  const approved = new Map<number, Set<string>>();
  for (const a of approvals) {
    let s = approved.get(a.nodeId);
    if (!s) approved.set(a.nodeId, (s = new Set()));
    s.add(a.prefix);
  }
  const out = new Map<number, ActiveRoutes>();
  for (const n of nodes) {
    const ok = approved.get(n.id) ?? new Set<string>();
    out.set(n.id, {
      routes: n.advertisedRoutes.filter((p) => ok.has(p)),
      exitNode: n.advertisedExit && EXIT_PREFIXES.every((p) => ok.has(p)),
    });
  }
  return out;
}

/**
 * The primary router of every active prefix. Stateful: the current primary
 * is kept while it is online (and still has the route); otherwise the online
 * router with the lowest id; with none online, the current one if it still
 * has the route, else the lowest id.
 */
export class PrimaryElection {
  private readonly primaries = new Map<string, number>();

  elect(active: Map<number, ActiveRoutes>, isOnline: (id: number) => boolean): Map<string, number> {
    const routers = new Map<string, number[]>();
    for (const [id, a] of active) {
      for (const p of a.routes) {
        let ids = routers.get(p);
        if (!ids) routers.set(p, (ids = []));
        ids.push(id);
      }
    }
    for (const p of this.primaries.keys()) if (!routers.has(p)) this.primaries.delete(p);
    for (const [p, ids] of routers) {
      ids.sort((a, b) => a - b);
      const current = this.primaries.get(p);
      const has = current !== undefined && ids.includes(current);
      if (has && isOnline(current)) continue;
      const next = ids.find((id) => isOnline(id)) ?? (has ? current : ids[0]!);
      this.primaries.set(p, next);
    }
    return new Map(this.primaries);
  }
}

export type { RouteRow };

export function listRoutes(r: Registry, online: (id: number) => boolean): RouteRow[] {
  const nodes = r.nodes();
  const approvals = r.approvals();
  const primaries = r.primaries(online);
  const rows: RouteRow[] = [];
  for (const n of nodes) {
    const ok = new Set(approvals.filter((a) => a.nodeId === n.id).map((a) => a.prefix));
    const prefixes = [...new Set([...n.advertisedRoutes, ...[...ok].filter((p) => !EXIT_PREFIXES.includes(p as '::/0'))])];
    const base = { nodeId: n.id, node: n.hostname, online: online(n.id) };
    for (const p of prefixes) {
      rows.push({ ...base, kind: 'route', prefix: p, advertised: n.advertisedRoutes.includes(p), approved: ok.has(p), primary: primaries.get(p) === n.id });
    }
    const exitApproved = EXIT_PREFIXES.every((p) => ok.has(p));
    if (n.advertisedExit || exitApproved) {
      rows.push({ ...base, kind: 'exit', prefix: EXIT_PREFIXES.join(','), advertised: n.advertisedExit, approved: exitApproved, primary: false });
    }
  }
  return rows;
}

/** A prefix as the admin typed it, checked like an advertised one; the default route means the exit node. */
function adminPrefix(ipv6Prefix: string, text: string): { prefix: IpPrefix; exit: boolean } {
  let p: IpPrefix;
  try {
    p = parsePrefix(text);
  } catch (err) {
    return bad(`${(err as Error).message}: give a prefix such as 192.168.1.0/24, or 0.0.0.0/0 for an exit node`);
  }
  if (isDefaultRoute(p)) return { prefix: p, exit: true };
  const problem = subnetRouteProblem(p, meshPrefixes(ipv6Prefix));
  if (problem) bad(problem);
  return { prefix: p, exit: false };
}

function mustFind(r: Registry, ref: string): NodeRecord {
  const n = r.find(ref);
  if (!n) throw new ControlError('NODE_UNKNOWN', `no node ${JSON.stringify(terminalSafe(ref, 80))}: see \`meshctl control nodes list\``);
  return n;
}

/** An address an approved route may not capture, and whose it is. */
export interface ProtectedAddress {
  address: IpAddress;
  what: string;
}

/** Where the running server listens and its relays' URLs, kept in the store so approvals made without the server check them too. */
export async function recordProtectedTargets(store: StoreTx, listenHost: string, relayUrls: string[]): Promise<void> {
  await store.setMeta(TARGETS_META_KEY, JSON.stringify({ listenHost, relayUrls }));
}

/**
 * The addresses of the control server and the relays. A wildcard listen
 * address stands for every address of this host; host names (relays' URLs,
 * a named listen host) are resolved now, and `notes` says so, since a route
 * approved today cannot follow a name that moves later.
 */
export async function protectedAddresses(
  targets: { listenHost: string; relayUrls: string[] } | null,
): Promise<{ addresses: ProtectedAddress[]; notes: string[] }> {
  const addresses: ProtectedAddress[] = [];
  const notes: string[] = [];
  if (!targets) return { addresses, notes: ["the control server never ran here: its and its relays' addresses were not checked"] };
  const add = async (host: string, what: string): Promise<void> => {
    const h = host.replace(/^\[|\]$/g, '');
    try {
      const a = parseIp(h);
      if (a.text === '0.0.0.0' || a.text === '::') {
        for (const list of Object.values(networkInterfaces())) {
          for (const i of list ?? [])
            if (!i.internal) addresses.push({ address: parseIp(i.address.replace(/%.*$/, '')), what: `${what} (listening on all addresses)` });
        }
      } else addresses.push({ address: a, what });
      return;
    } catch {
      // a host name: resolved below
    }
    try {
      const found = await lookup(h, { all: true });
      for (const f of found) addresses.push({ address: parseIp(f.address), what: `${what} (${h} resolves to ${f.address} now)` });
      notes.push(`resolved ${h} (${what}) to ${found.map((f) => f.address).join(', ')} for this check; a later change of that name is not followed`);
    } catch (err) {
      notes.push(`could not resolve ${h} (${what}): ${(err as Error).message}; its address was not checked`);
    }
  };
  await add(targets.listenHost, 'the control server');
  for (const u of targets.relayUrls) {
    let host: string;
    try {
      host = new URL(u).hostname;
    } catch {
      continue;
    }
    await add(host, `relay ${u}`);
  }
  return { addresses, notes };
}

/** The stored targets (see recordProtectedTargets), or null when the server never ran. */
export async function loadProtectedTargets(store: StoreTx): Promise<{ listenHost: string; relayUrls: string[] } | null> {
  const raw = await store.getMeta(TARGETS_META_KEY);
  if (!raw) return null;
  try {
    const o = JSON.parse(raw) as { listenHost?: unknown; relayUrls?: unknown };
    if (typeof o.listenHost !== 'string' || !Array.isArray(o.relayUrls)) return null;
    return { listenHost: o.listenHost, relayUrls: o.relayUrls.filter((u): u is string => typeof u === 'string') };
  } catch {
    return null;
  }
}

export interface ApproveResult {
  node: string;
  nodeId: number;
  /** the canonical prefixes approved (both default routes for an exit node) */
  prefixes: string[];
  exitNode: boolean;
  /** whether the node advertises it now (else it is a pre-approval) */
  advertised: boolean;
  notes: string[];
}

/**
 * Approves `prefixText` for the node: a subnet route, or (0.0.0.0/0 or ::/0)
 * the node as an exit node. A subnet route that contains the control server's
 * or a relay's address is refused: nodes that accept it would send their own
 * control and relay traffic into the mesh.
 */
export async function approveRoute(
  r: Registry,
  ref: string,
  prefixText: string,
  guard: { addresses: ProtectedAddress[]; notes: string[] },
): Promise<ApproveResult> {
  const n = mustFind(r, ref);
  const { prefix, exit } = adminPrefix(r.ipv6Prefix, prefixText);
  if (!exit) {
    for (const g of guard.addresses) {
      if (prefixesOverlap(prefix, hostPrefix(g.address))) {
        bad(`${prefix.text} contains ${g.address.text}, ${g.what}: nodes would route their control and relay traffic into the mesh; approve a narrower prefix`);
      }
    }
  }
  const prefixes = exit ? [...EXIT_PREFIXES] : [prefix.text];
  return r.store.transaction(async (tx) => {
    const have = (await tx.listRouteApprovals()).filter((a) => a.nodeId === n.id);
    const fresh = prefixes.filter((p) => !have.some((a) => a.prefix === p));
    if (have.length + fresh.length > MAX_APPROVALS_PER_NODE) {
      bad(`node ${n.hostname} already has ${have.length} approvals (MAX_APPROVALS_PER_NODE = ${MAX_APPROVALS_PER_NODE}): reject some first`);
    }
    for (const p of fresh) await tx.approveRoute({ nodeId: n.id, prefix: p });
    const advertised = exit ? n.advertisedExit : n.advertisedRoutes.includes(prefix.text);
    return { node: n.hostname, nodeId: n.id, prefixes, exitNode: exit, advertised, notes: guard.notes };
  });
}

/** Removes the approval (for an exit node, of both default routes); the route leaves every map at once. */
export async function rejectRoute(
  r: Registry,
  ref: string,
  prefixText: string,
): Promise<{ node: string; nodeId: number; prefixes: string[]; exitNode: boolean }> {
  const n = mustFind(r, ref);
  let p: IpPrefix;
  try {
    p = parsePrefix(prefixText);
  } catch (err) {
    return bad(`${(err as Error).message}: give the prefix as \`meshctl control routes list\` shows it`);
  }
  const exit = isDefaultRoute(p);
  const prefixes = exit ? [...EXIT_PREFIXES] : [p.text];
  const removed = await r.store.transaction(async (tx) => {
    const out: string[] = [];
    for (const x of prefixes) if (await tx.removeRouteApproval({ nodeId: n.id, prefix: x })) out.push(x);
    return out;
  });
  if (removed.length === 0) {
    throw new ControlError('NOT_FOUND', `${exit ? 'exit node' : p.text} is not approved for ${n.hostname}: see \`meshctl control routes list\``);
  }
  return { node: n.hostname, nodeId: n.id, prefixes, exitNode: exit };
}
