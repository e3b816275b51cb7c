// What a policy means for one node: which selectors pick it as a source, which
// of its addresses (and the routes, exit and devices it serves) a destination
// names, and from that its packet-filter rules and the peers it may see. The
// engine (engine.ts) calls these per node it has to recompute; nothing here
// walks every node unless a selector is a prefix or `*` (then it must).
import type { FilterDestination, FilterRule } from '../netmap/types.js';
import { MAX_FILTER_DESTINATIONS, MAX_FILTER_RULES } from '../netmap/parse.js';
import { parsePrefix, prefixesOverlap, type IpPrefix } from '../util/netaddr.js';
import type { Acl, Policy, PolicyNode, Selector } from './types.js';

/** Parsed prefixes, by text: the same few hundred prefixes are compared over and over. Bounded: cleared when full. */
const PREFIX_CACHE_ENTRIES = 100_000;
const prefixCache = new Map<string, IpPrefix>();
export function prefix(text: string): IpPrefix {
  let p = prefixCache.get(text);
  if (!p) {
    if (prefixCache.size >= PREFIX_CACHE_ENTRIES) prefixCache.clear();
    p = parsePrefix(text);
    prefixCache.set(text, p);
  }
  return p;
}

const hostBits = (a: string): string => (a.includes(':') ? `${a}/128` : `${a}/32`);
export const ANY = ['0.0.0.0/0', '::/0'];

/** `a` lies inside `b`. */
export function within(a: string, b: string): boolean {
  const pa = prefix(a);
  const pb = prefix(b);
  return pa.bits >= pb.bits && prefixesOverlap(pa, pb);
}

/** The part of `a` that is also in `b`, or null: two prefixes overlap only by one containing the other. */
function intersect(a: string, b: string): string | null {
  const pa = prefix(a);
  const pb = prefix(b);
  if (!prefixesOverlap(pa, pb)) return null;
  return pa.bits >= pb.bits ? a : b;
}

/** Whether a user-owned (not tagged) node. */
const owned = (n: PolicyNode): boolean => n.user !== null && n.tags.length === 0;

/** Whether `sel` picks node `n` as a whole (a source, or a destination by identity). `self` never does on its own. */
export function selectsNode(sel: Selector, n: PolicyNode): boolean {
  switch (sel.kind) {
    case 'all':
      return true;
    case 'user':
      return owned(n) && n.user === sel.name;
    case 'tag':
      return n.tags.includes(sel.name);
    case 'member':
      return owned(n);
    case 'tagged':
      return n.tags.length > 0;
    case 'prefix':
      return n.addresses.some((a) => within(hostBits(a), sel.prefix));
    case 'self':
      return false;
  }
}

/**
 * The destination prefixes on `n` that `sel` names: its own addresses when it
 * picks the node, and for `*` and prefixes also what it routes: its subnet
 * routes, its devices' addresses, and, as an exit node, destinations outside
 * the mesh. `self` is handled by the caller (it depends on the source).
 */
export function targets(sel: Selector, n: PolicyNode, mesh: readonly string[]): string[] {
  if (sel.kind === 'self') return [];
  if (sel.kind === 'all') return [...n.addresses.map(hostBits), ...n.routes, ...n.deviceAddresses.map(hostBits), ...(n.exitNode ? ANY : [])];
  if (sel.kind !== 'prefix') return selectsNode(sel, n) ? n.addresses.map(hostBits) : [];
  const out: string[] = [];
  for (const a of [...n.addresses, ...n.deviceAddresses]) if (within(hostBits(a), sel.prefix)) out.push(hostBits(a));
  for (const r of n.routes) {
    const x = intersect(r, sel.prefix);
    if (x) out.push(x);
  }
  // an exit node carries what lies outside the mesh and its routes
  if (n.exitNode && !mesh.some((m) => within(sel.prefix, m))) out.push(sel.prefix);
  return [...new Set(out)];
}

/** Where a policy's nodes are found by identity, so a selector's nodes are looked up rather than searched for. */
export class NodeIndex {
  readonly nodes = new Map<number, PolicyNode>();
  private readonly byUser = new Map<string, Set<number>>();
  private readonly byTag = new Map<string, Set<number>>();
  private readonly members = new Set<number>();
  private readonly tagged = new Set<number>();
  /**
   * The nodes a prefix selector picks or targets, by selector: finding them
   * takes a pass over every node, so it is done once per prefix until the
   * node set changes (every add and remove clears it; a policy has at most a
   * few thousand prefixes, so it stays small).
   */
  private readonly byPrefix = new Map<string, number[]>();

  private prefixNodes(key: string, test: (n: PolicyNode) => boolean): number[] {
    let ids = this.byPrefix.get(key);
    if (!ids) {
      ids = [];
      for (const n of this.nodes.values()) if (test(n)) ids.push(n.id);
      this.byPrefix.set(key, ids);
    }
    return ids;
  }

  add(n: PolicyNode): void {
    this.byPrefix.clear();
    this.nodes.set(n.id, n);
    if (owned(n)) {
      this.members.add(n.id);
      let s = this.byUser.get(n.user!);
      if (!s) this.byUser.set(n.user!, (s = new Set()));
      s.add(n.id);
    }
    if (n.tags.length) this.tagged.add(n.id);
    for (const t of n.tags) {
      let s = this.byTag.get(t);
      if (!s) this.byTag.set(t, (s = new Set()));
      s.add(n.id);
    }
  }

  remove(id: number): void {
    const n = this.nodes.get(id);
    if (!n) return;
    this.byPrefix.clear();
    this.nodes.delete(id);
    this.members.delete(id);
    this.tagged.delete(id);
    if (n.user !== null) {
      const s = this.byUser.get(n.user);
      s?.delete(id);
      if (s?.size === 0) this.byUser.delete(n.user);
    }
    for (const t of n.tags) {
      const s = this.byTag.get(t);
      s?.delete(id);
      if (s?.size === 0) this.byTag.delete(t);
    }
  }

  /** The nodes `sel` picks as a whole. */
  selected(sel: Selector): Iterable<number> {
    switch (sel.kind) {
      case 'all':
        return this.nodes.keys();
      case 'user':
        return this.byUser.get(sel.name) ?? [];
      case 'tag':
        return this.byTag.get(sel.name) ?? [];
      case 'member':
        return this.members;
      case 'tagged':
        return this.tagged;
      case 'prefix':
        return this.prefixNodes(`s ${sel.prefix}`, (n) => selectsNode(sel, n));
      case 'self':
        return [];
    }
  }

  /** The untagged nodes of `user`. */
  ownedBy(user: string): Iterable<number> {
    return this.byUser.get(user) ?? [];
  }

  /** The nodes a destination selector reaches in any way (addresses, routes, devices, exit); not `self`. */
  targeted(sel: Selector, mesh: readonly string[]): Iterable<number> {
    if (sel.kind !== 'prefix') return this.selected(sel);
    return this.prefixNodes(`t ${sel.prefix}`, (n) => targets(sel, n, mesh).length > 0);
  }
}

const srcMatches = (acl: Acl, n: PolicyNode): boolean => acl.src.some((s) => selectsNode(s, n));

/** The source prefixes of an acl entry: `*` and prefixes as written, other selectors as their nodes' addresses. */
export function sourcePrefixes(acl: Acl, index: NodeIndex): string[] {
  const out = new Set<string>();
  for (const s of acl.src) {
    if (s.kind === 'all') ANY.forEach((p) => out.add(p));
    else if (s.kind === 'prefix') out.add(s.prefix);
    else for (const id of index.selected(s)) for (const a of index.nodes.get(id)!.addresses) out.add(hostBits(a));
  }
  return [...out].sort();
}

function destinations(targetsOf: string[], ports: Array<{ first: number; last: number }>, out: FilterDestination[]): void {
  for (const ip of targetsOf) for (const p of ports) out.push({ ip, first: p.first, last: p.last });
}

/** Adds a rule, split so that no rule has more destinations than a node accepts. */
function push(rules: FilterRule[], srcIps: string[], dstPorts: FilterDestination[], protocols: number[]): void {
  for (let i = 0; i < dstPorts.length; i += MAX_FILTER_DESTINATIONS)
    rules.push({ srcIps, dstPorts: dstPorts.slice(i, i + MAX_FILTER_DESTINATIONS), protocols });
}

/**
 * Node `n`'s packet filter: per acl entry, one rule for what its destinations
 * name on `n` (from the entry's sources), and one for `autogroup:self` (from
 * the sources that are `n`'s user's own nodes). `sources(i)` gives entry i's
 * source prefixes (the engine caches them).
 */
export function filterFor(policy: Policy, n: PolicyNode, index: NodeIndex, mesh: readonly string[], sources: (i: number) => string[]): FilterRule[] {
  const rules: FilterRule[] = [];
  for (const [i, acl] of policy.acls.entries()) {
    const dstPorts: FilterDestination[] = [];
    const selfPorts: FilterDestination[] = [];
    for (const d of acl.dst) {
      if (d.selector.kind === 'self') {
        if (owned(n)) destinations(n.addresses.map(hostBits), d.ports, selfPorts);
      } else destinations(targets(d.selector, n, mesh), d.ports, dstPorts);
    }
    if (dstPorts.length) {
      const srcIps = sources(i);
      if (srcIps.length) push(rules, srcIps, dstPorts, acl.protocols);
    }
    if (selfPorts.length) {
      const srcIps = new Set<string>();
      for (const id of index.ownedBy(n.user!)) {
        const m = index.nodes.get(id)!;
        if (srcMatches(acl, m)) for (const a of m.addresses) srcIps.add(hostBits(a));
      }
      if (srcIps.size) push(rules, [...srcIps].sort(), selfPorts, acl.protocols);
    }
  }
  // what a node would refuse is never sent: past the bound, the rest is left out (less is allowed, never more)
  return rules.length > MAX_FILTER_RULES ? rules.slice(0, MAX_FILTER_RULES) : rules;
}

/**
 * The peers `n` may see (Tailscale's rule): the nodes that may reach it, and
 * the nodes (and routers, exit nodes and gateways) it may reach. Symmetric:
 * m is in peersOf(n) exactly when n is in peersOf(m).
 */
export function peersOf(policy: Policy, n: PolicyNode, index: NodeIndex, mesh: readonly string[]): Set<number> {
  const out = new Set<number>();
  for (const acl of policy.acls) {
    const isSource = srcMatches(acl, n);
    for (const d of acl.dst) {
      if (d.selector.kind === 'self') {
        // n's own user's nodes: n reaches them when n is a source; they reach n when they are sources
        if (!owned(n)) continue;
        for (const id of index.ownedBy(n.user!)) if (isSource || srcMatches(acl, index.nodes.get(id)!)) out.add(id);
        continue;
      }
      if (isSource) for (const id of index.targeted(d.selector, mesh)) out.add(id);
      if (targets(d.selector, n, mesh).length) for (const s of acl.src) for (const id of index.selected(s)) out.add(id);
    }
  }
  out.delete(n.id);
  return out;
}
