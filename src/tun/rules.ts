// meshctl's own policy routing on Linux, over rtnetlink (./netlink.ts): a
// routing table of its own (52) that holds the routes to peers' subnets (and
// an exit node's default routes), and the rules in front of it, with the
// numbers Tailscale uses so an administrator who knows one knows the other:
//   5210  fwmark 0x80000/0xff0000 lookup main     meshctl's own sockets bypass the tunnel
//   5230  fwmark 0x80000/0xff0000 lookup default
//   5250  fwmark 0x80000/0xff0000 unreachable     … and never fall through into table 52
//   5270  lookup 52                               everything else sees meshctl's routes
// Rule 5270 runs before the `main` rule (32766), so a route in table 52 wins
// over main's: routes that would shadow the host's own LAN are kept out of
// table 52 by the caller. Every request is built from typed values and every
// ack is checked.
import { MESH_FWMARK, MESH_FWMARK_MASK } from '../util/marked-socket.js';
import type { IpPrefix } from '../util/netaddr.js';
import { TunError } from './errors.js';
import { bindLibc } from './libc.js';
import { checkIfname, runRequests } from './requests.js';
import {
  type DumpedRoute,
  delDumpedRouteMessage,
  delRuleMessage,
  delTableRouteMessage,
  dumpRoutesMessage,
  hostBitsSet,
  newRuleMessage,
  parseRoute,
  RTM_NEWROUTE,
  replaceTableRouteMessage,
  RouteSocket,
  type RouteSocketOptions,
  type RuleSpec,
} from './netlink.js';

/** The routing table that holds meshctl's routes (Tailscale's number). */
export const MESH_ROUTE_TABLE = 52;
/** Rule priorities (Tailscale's): packets of meshctl's own marked sockets (util/marked-socket.ts MESH_FWMARK) by main, then table 52. */
export const RULE_PRIORITY_MARKED_MAIN = 5210;
export const RULE_PRIORITY_MARKED_DEFAULT = 5230;
export const RULE_PRIORITY_MARKED_UNREACHABLE = 5250;
export const RULE_PRIORITY_MESH_TABLE = 5270;
const RT_TABLE_MAIN = 254;
const RT_TABLE_DEFAULT = 253;
/** Most routes one call adds or removes: a map holds at most a few hundred peers with a few routes each; this bounds the time one reconcile spends. */
export const MAX_TABLE_ROUTES_PER_CALL = 4_096;
/** Copies of one rule a removal deletes (another tool may have added one again); one delete request each. */
const MAX_RULE_COPIES = 8;

const EEXIST = 17;
const ENOENT = 2;
const ESRCH = 3;
const ENODEV = 19;

/** The four rules, for one family, in priority order. */
export function meshRules(family: 4 | 6): RuleSpec[] {
  const fwmark = { mark: MESH_FWMARK, mask: MESH_FWMARK_MASK };
  return [
    { family, priority: RULE_PRIORITY_MARKED_MAIN, fwmark, action: { kind: 'lookup', table: RT_TABLE_MAIN } },
    { family, priority: RULE_PRIORITY_MARKED_DEFAULT, fwmark, action: { kind: 'lookup', table: RT_TABLE_DEFAULT } },
    { family, priority: RULE_PRIORITY_MARKED_UNREACHABLE, fwmark, action: { kind: 'unreachable' } },
    { family, priority: RULE_PRIORITY_MESH_TABLE, action: { kind: 'lookup', table: MESH_ROUTE_TABLE } },
  ];
}

function ruleText(r: RuleSpec): string {
  const mark = r.fwmark ? ` fwmark 0x${r.fwmark.mark.toString(16)}/0x${r.fwmark.mask.toString(16)}` : '';
  const action = r.action.kind === 'lookup' ? `lookup ${r.action.table}` : 'unreachable';
  return `rule -${r.family} pref ${r.priority}${mark} ${action}`;
}

/** Adds the given rules; one already there (EEXIST) is left as it is. */
export async function addRules(rules: readonly RuleSpec[], opts: RouteSocketOptions = {}): Promise<void> {
  await runRequests(
    'adding routing rules',
    rules.map((r) => ({ text: `adding ${ruleText(r)}`, build: (seq) => newRuleMessage(seq, r), ok: [EEXIST] })),
    opts,
  );
}

/**
 * Deletes the given rules, every copy: each delete is sent MAX_RULE_COPIES times (the kernel removes one copy per
 * request), and a rule that is not there (ENOENT) counts as done.
 */
export async function removeRules(rules: readonly RuleSpec[], opts: RouteSocketOptions = {}): Promise<void> {
  const items = rules.flatMap((r) =>
    Array.from({ length: MAX_RULE_COPIES }, () => ({ text: `removing ${ruleText(r)}`, build: (seq: number) => delRuleMessage(seq, r), ok: [ENOENT] })),
  );
  await runRequests('removing routing rules', items, opts);
}

/** meshctl's four rules for IPv4 and IPv6 (5210, 5230, 5250, 5270). */
export async function installMeshRules(opts: RouteSocketOptions = {}): Promise<void> {
  await addRules([...meshRules(4), ...meshRules(6)], opts);
}

export async function removeMeshRules(opts: RouteSocketOptions = {}): Promise<void> {
  await removeRules([...meshRules(4), ...meshRules(6)], opts);
}

function ifindexOf(ifname: string, what: string): number {
  checkIfname(ifname);
  const ifindex = bindLibc().ifNameToIndex(ifname);
  if (ifindex === 0) throw new TunError('TUN_CONFIG_FAILED', `${what} on ${ifname}: no such interface`);
  return ifindex;
}

/**
 * Routes in `table` through `ifname`: `add` replaced in (a repeat succeeds), then `remove` deleted (one that is gone
 * already counts as done). Prefixes with host bits set are refused before anything is sent.
 */
export async function updateTableRoutes(
  ifname: string,
  add: readonly IpPrefix[],
  remove: readonly IpPrefix[],
  table = MESH_ROUTE_TABLE,
  opts: RouteSocketOptions = {},
): Promise<void> {
  if (add.length + remove.length === 0) return;
  if (add.length + remove.length > MAX_TABLE_ROUTES_PER_CALL) {
    throw new TunError('TUN_CONFIG_FAILED', `${add.length + remove.length} routes for table ${table}: more than ${MAX_TABLE_ROUTES_PER_CALL} at once`);
  }
  for (const r of [...add, ...remove]) {
    if (hostBitsSet(r))
      throw new TunError('TUN_CONFIG_FAILED', `route ${r.text} table ${table}: the address has bits set after /${r.bits}; give the network address`);
  }
  const what = `routes in table ${table}`;
  if (remove.length > 0 && add.length === 0 && bindLibc().ifNameToIndex(ifname) === 0) return; // the interface took its routes with it
  const ifindex = ifindexOf(ifname, what);
  await runRequests(
    what,
    [
      ...add.map((p) => ({
        text: `route ${p.text} dev ${ifname} table ${table}`,
        build: (seq: number) => replaceTableRouteMessage(seq, ifindex, p, table),
        ok: [],
      })),
      ...remove.map((p) => ({
        text: `removing route ${p.text} dev ${ifname} table ${table}`,
        build: (seq: number) => delTableRouteMessage(seq, ifindex, p, table),
        ok: [ESRCH, ENOENT, ENODEV],
      })),
    ],
    opts,
  );
}

/** Every route in `table`, IPv4 and IPv6, read with one dump per family. */
export async function tableRoutes(table = MESH_ROUTE_TABLE, opts: RouteSocketOptions = {}): Promise<DumpedRoute[]> {
  let sock: RouteSocket;
  try {
    sock = RouteSocket.open(opts);
  } catch (err) {
    throw new TunError('TUN_CONFIG_FAILED', `reading table ${table}: ${(err as Error).message}`);
  }
  try {
    const out: DumpedRoute[] = [];
    for (const fam of [4, 6] as const) {
      const seq = sock.nextSeq();
      for (const m of await sock.dump(dumpRoutesMessage(seq, fam), seq)) {
        if (m.type !== RTM_NEWROUTE) continue;
        const r = parseRoute(m.body);
        if (r && r.table === table) out.push(r);
      }
    }
    return out;
  } catch (err) {
    throw new TunError('TUN_CONFIG_FAILED', `reading table ${table}: ${(err as Error).message}`);
  } finally {
    sock.close();
  }
}

/** Deletes every route in `table` (meshctl's own; what a killed daemon left there). Returns how many there were. */
export async function flushTable(table = MESH_ROUTE_TABLE, opts: RouteSocketOptions = {}): Promise<number> {
  if (table === RT_TABLE_MAIN || table === RT_TABLE_DEFAULT || table === 255) throw new RangeError(`table ${table} is the system's, not meshctl's`);
  const routes = await tableRoutes(table, opts);
  await runRequests(
    `flushing table ${table}`,
    routes.map((r) => ({ text: `removing a route of table ${table}`, build: (seq: number) => delDumpedRouteMessage(seq, r), ok: [ESRCH, ENOENT] })),
    opts,
  );
  return routes.length;
}
