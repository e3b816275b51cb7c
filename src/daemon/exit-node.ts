// Exit nodes, both sides.
// As a client (`up --exit-node NAME|IP`): the chosen peer must be an approved
// exit node in the map. Its AllowedIPs in the engine gain 0.0.0.0/0 and ::/0,
// and table 52 gets both default routes through the mesh interface (behind rule
// 5270; meshctl's own sockets carry fwmark 0x80000 and leave by rule 5210, see
// util/marked-socket.ts). The host's main table is never touched. When the exit
// node goes away (offline, deleted, no longer approved) the default routes
// stay: the engine has no peer for those destinations and drops the packets,
// so nothing leaks to the uplink (fail closed); status says so.
// As an exit node (`up --advertise-exit-node`, approved by an admin): any
// destination is accepted from peers, forwarded traffic is masqueraded to the
// uplink for IPv4 and IPv6 (NAT66, in meshctl's own nftables table, snat.ts),
// and forwarding is read from /proc and reported when off.
import type { NetworkMap, NodeView } from '../netmap/types.js';
import { parseIp, parsePrefix, type IpPrefix } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';

/** The two default routes an exit node carries. */
export const EXIT_ROUTES: readonly IpPrefix[] = [parsePrefix('0.0.0.0/0'), parsePrefix('::/0')];
/** Longest exit-node selector kept (a DNS name's length). */
export const MAX_EXIT_NODE_CHARS = 253;

/** The exit-node settings (route-prefs.ts keeps them with the other routing settings). */
export interface ExitNodePrefs {
  /** offer this node as an exit node (control must approve it) */
  advertiseExitNode: boolean;
  /** the peer used as exit node, by name or mesh IP; '' for none */
  exitNode: string;
  /** with an exit node, the host's LAN stays reachable directly */
  exitNodeAllowLanAccess: boolean;
}

export const DEFAULT_EXIT_NODE_PREFS: ExitNodePrefs = { advertiseExitNode: false, exitNode: '', exitNodeAllowLanAccess: false };

/** The `--exit-node` value as given: '' (off), a mesh IP (canonical) or a node name. Throws naming the fix. */
export function parseExitNodeSelector(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Error(`${what} must be a node name or mesh IP ("" turns it off)`);
  if (v === '') return '';
  try {
    return parseIp(v).text;
  } catch {
    /* not an address: a name */
  }
  if (v.length > MAX_EXIT_NODE_CHARS || !/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(v)) {
    throw new Error(`${what}: ${terminalSafe(v, 64)} is not a node name or mesh IP`);
  }
  return v.toLowerCase().replace(/\.$/, '');
}

/** The peer `sel` names: by mesh IP, by name, or by the name's first label (NAME.suffix). */
export function findPeer(map: NetworkMap, sel: string): NodeView | undefined {
  const lower = sel.toLowerCase();
  return map.peers.find((p) => p.addresses.includes(sel) || p.name.toLowerCase() === lower || p.name.toLowerCase() === lower.split('.')[0]);
}

/** Why `sel` cannot be used as exit node in `map`, or null when it can. */
export function exitNodeRefusal(map: NetworkMap, sel: string): string | null {
  const peer = findPeer(map, sel);
  if (!peer) return `exit node ${terminalSafe(sel, 64)} is not a peer in this network; \`meshctl status\` lists the peers`;
  if (!peer.exitNode) {
    return `${peer.name} is not an approved exit node; it must run \`meshctl up --advertise-exit-node\` and an admin approve it (\`meshctl control routes approve ${peer.name} 0.0.0.0/0\`)`;
  }
  return null;
}

/** The state of the chosen exit node, for status and health. */
export interface ExitNodeState {
  /** the setting as given */
  selector: string;
  /** the peer it names, when the map has one */
  name: string | null;
  /** 'active': traffic goes through it; 'offline' / 'gone' / 'unapproved': internet traffic is blocked (fail closed) */
  state: 'active' | 'offline' | 'gone' | 'unapproved';
  allowLanAccess: boolean;
}

export function exitNodeState(map: NetworkMap | null, prefs: ExitNodePrefs): ExitNodeState | null {
  if (!prefs.exitNode) return null;
  const peer = map ? findPeer(map, prefs.exitNode) : undefined;
  const state = !peer ? 'gone' : !peer.exitNode ? 'unapproved' : !peer.online ? 'offline' : 'active';
  return { selector: prefs.exitNode, name: peer?.name ?? null, state, allowLanAccess: prefs.exitNodeAllowLanAccess };
}

/** The health line for an exit node that carries nothing (fail closed), or null. */
export function exitNodeHealth(s: ExitNodeState | null): string | null {
  if (!s || s.state === 'active') return null;
  const who = terminalSafe(s.name ?? s.selector, 64);
  const why = s.state === 'offline' ? 'is offline' : s.state === 'gone' ? 'is no longer in the network' : 'is no longer an approved exit node';
  return `exit node ${who} ${why}: traffic to the internet is blocked; \`meshctl up --exit-node=\` to turn it off`;
}

/**
 * The map as the engine should take it: the chosen exit node's AllowedIPs gain 0.0.0.0/0 and ::/0 while it is an
 * approved exit node and online. Otherwise the map is returned as it is, and the default routes in table 52 lead to
 * no peer: packets to the internet are dropped by the engine.
 */
export function withExitNode(map: NetworkMap, prefs: ExitNodePrefs): NetworkMap {
  const peer = activeExitPeer(map, prefs);
  if (!peer) return map;
  return { ...map, peers: map.peers.map((p) => (p === peer ? exitNodeView(p) : p)) };
}

/** The chosen exit node's view while it is approved and online (what withExitNode changes), else undefined. */
export function activeExitPeer(map: NetworkMap, prefs: ExitNodePrefs): NodeView | undefined {
  if (!prefs.exitNode) return undefined;
  const peer = findPeer(map, prefs.exitNode);
  return peer?.exitNode && peer.online ? peer : undefined;
}

/** An exit node's view as the engine takes it: its AllowedIPs and both default routes. */
export function exitNodeView(p: NodeView): NodeView {
  return { ...p, allowedIps: [...p.allowedIps.filter((a) => a !== '0.0.0.0/0' && a !== '::/0'), '0.0.0.0/0', '::/0'] };
}

/** Whether this node serves as exit node now: it advertises it and control approved it. */
export function servesAsExitNode(self: NodeView, prefs: ExitNodePrefs): boolean {
  return prefs.advertiseExitNode && self.exitNode === true;
}
