// The node's routing settings as the local API and state.json carry them:
// the subnet routes it advertises (`up --advertise-routes`), whether it
// installs its peers' routes (`--accept-routes`) and whether it SNATs what it
// forwards (`--snat-subnet-routes`). Prefixes are parsed into typed values and
// kept in canonical text; control applies the network's own rules on top
// (mesh prefixes, special blocks) when the node advertises them.
import { parsePrefix } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';
import { MAX_NODE_ROUTES } from '../netmap/types.js';
import { isDefaultRoute, maskedPrefix } from '../netmap/routes.js';
import { DEFAULT_EXIT_NODE_PREFS, parseExitNodeSelector, type ExitNodePrefs } from './exit-node.js';

/** Subnet routes one node may advertise: control refuses more (netmap/types.ts says why the number). */
export const MAX_ADVERTISED_ROUTES = MAX_NODE_ROUTES;

export interface RoutePrefs extends ExitNodePrefs {
  /** canonical prefixes this node offers to route for the mesh; [] advertises none */
  advertiseRoutes: string[];
  /** install peers' approved primary routes into table 52 */
  acceptRoutes: boolean;
  /** masquerade forwarded traffic to the router's own LAN address (default true) */
  snatSubnetRoutes: boolean;
}

export const DEFAULT_ROUTE_PREFS: RoutePrefs = { advertiseRoutes: [], acceptRoutes: false, snatSubnetRoutes: true, ...DEFAULT_EXIT_NODE_PREFS };

/**
 * A list of prefixes as the user or state.json gives it: each parsed, with no host bits and not a default route
 * (that is an exit node), duplicates dropped, at most MAX_ADVERTISED_ROUTES. Throws an Error naming the bad entry and
 * the fix.
 */
export function parseRouteList(v: unknown, what: string): string[] {
  if (!Array.isArray(v)) throw new Error(`${what} must be a list of prefixes such as "192.168.1.0/24"`);
  if (v.length > MAX_ADVERTISED_ROUTES) throw new Error(`${what} has ${v.length} prefixes; at most ${MAX_ADVERTISED_ROUTES} may be advertised`);
  const out = new Set<string>();
  for (const item of v) {
    let p;
    try {
      p = parsePrefix(item);
    } catch (err) {
      throw new Error(`${what}: ${terminalSafe(String(item), 64)} is not a prefix (${(err as Error).message}); give one such as 192.168.1.0/24`);
    }
    if (maskedPrefix(p).text !== p.text) throw new Error(`${what}: ${p.text} has bits set after /${p.bits}; give the network address ${maskedPrefix(p).text}`);
    if (isDefaultRoute(p)) throw new Error(`${what}: ${p.text} is the default route; use --advertise-exit-node for that`);
    out.add(p.text);
  }
  return [...out];
}

/** The settings from state.json's prefs object: absent fields (older files) take the defaults. Throws naming the field. */
export function parseRoutePrefs(o: Record<string, unknown>, field: (name: string) => string): RoutePrefs {
  const advertiseRoutes = o.advertiseRoutes === undefined ? [] : parseRouteList(o.advertiseRoutes, field('advertiseRoutes'));
  for (const k of ['acceptRoutes', 'snatSubnetRoutes', 'advertiseExitNode', 'exitNodeAllowLanAccess'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new Error(`${field(k)}: expected true or false`);
  }
  return {
    advertiseRoutes,
    acceptRoutes: (o.acceptRoutes as boolean | undefined) ?? DEFAULT_ROUTE_PREFS.acceptRoutes,
    snatSubnetRoutes: (o.snatSubnetRoutes as boolean | undefined) ?? DEFAULT_ROUTE_PREFS.snatSubnetRoutes,
    advertiseExitNode: (o.advertiseExitNode as boolean | undefined) ?? false,
    exitNode: o.exitNode === undefined ? '' : parseExitNodeSelector(o.exitNode, field('exitNode')),
    exitNodeAllowLanAccess: (o.exitNodeAllowLanAccess as boolean | undefined) ?? false,
  };
}
