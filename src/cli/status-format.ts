// The text form of `meshctl status`: IP  HOSTNAME  OS  STATUS, where STATUS
// names the path that carries the traffic (never a bare "-", which users read
// as offline). Pure, so it is tested without a daemon. Every string that came
// from the network (names, OS, addresses, regions, errors) goes through
// terminalSafe: the daemon answering may be older and pass a peer's escape
// sequences on.
import type { DeviceStatus, PeerStatus, Status } from '../localapi/types.js';
import { terminalSafe } from '../util/text.js';

/** A table cell: longer names are cut (a DNS name is at most 253). */
export const MAX_CELL = 253;
/** A health line or an error from the daemon or control. */
export const MAX_MESSAGE = 1024;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export function ago(iso: string | null, nowMs = Date.now()): string {
  if (!iso) return 'never';
  const d = Math.max(0, nowMs - Date.parse(iso));
  if (d < MINUTE) return `${Math.floor(d / SECOND)}s ago`;
  if (d < HOUR) return `${Math.floor(d / MINUTE)}m ago`;
  if (d < DAY) return `${Math.floor(d / HOUR)}h ago`;
  return `${Math.floor(d / DAY)}d ago`;
}

export function peerState(p: PeerStatus, nowMs = Date.now()): string {
  if (!p.online) return `offline, last seen ${ago(p.lastSeen, nowMs)}`;
  const path =
    p.path.kind === 'direct'
      ? `direct ${terminalSafe(p.path.endpoint, MAX_CELL)}`
      : p.path.kind === 'relay'
        ? `relay "${terminalSafe(p.path.region, MAX_CELL)}"`
        : 'no path yet';
  if (p.active) return `active; ${path}, tx ${p.txBytes} rx ${p.rxBytes}`;
  return `idle; ${path}`;
}

/** A device on stock WireGuard: its gateway, and at the gateway where it is and what it moved. */
export function deviceState(d: DeviceStatus, nowMs = Date.now()): string {
  if (!d.viaSelf) return `device via ${terminalSafe(d.gateway, MAX_CELL)}`;
  if (!d.lastHandshake) return 'device via this node; no handshake yet';
  const at = d.endpoint ? ` ${terminalSafe(d.endpoint, MAX_CELL)}` : '';
  return `device via this node;${at} handshake ${ago(d.lastHandshake, nowMs)}, tx ${d.txBytes} rx ${d.rxBytes}`;
}

export interface TableOptions {
  self: boolean;
  peers: boolean;
  activeOnly: boolean;
}

export function stoppedMessage(s: Status): string | null {
  if (s.backendState === 'Stopped') return 'meshctl is stopped.';
  if (s.backendState !== 'NeedsLogin') return null;
  const why = s.control.lastError ? ` ${terminalSafe(s.control.lastError, MAX_MESSAGE)}.` : '';
  return `Logged out.${why} Log in with: meshctl up --login-server URL --auth-key KEY`;
}

/**
 * Subnet routes under the table: what this node advertises and how far each got (awaiting approval, approved,
 * primary), then each peer's routes and whether this node uses them or why not.
 */
export function routeLines(s: Status, o: TableOptions): string[] {
  const out: string[] = [];
  const cell = (v: unknown): string => terminalSafe(v, MAX_CELL);
  const r = s.self?.routes;
  if (o.self && r && r.advertised.length > 0) {
    const state = (p: string): string => (r.primary.includes(p) ? 'primary' : r.approved.includes(p) ? 'approved, not primary' : 'awaiting approval');
    out.push(`# Advertised routes: ${r.advertised.map((p) => `${cell(p)} (${state(p)})`).join(', ')}${r.snatSubnetRoutes ? '' : '; SNAT off'}`);
  }
  if (o.self && s.self?.advertiseExitNode) {
    out.push(`# Exit node offered: ${s.self.exitNodeApproved ? 'approved' : 'awaiting approval'}`);
  }
  if (o.self && s.exitNode) {
    const e = s.exitNode;
    const state = e.state === 'active' ? 'in use' : `${e.state}: internet traffic blocked`;
    out.push(`# Exit node: ${cell(e.name ?? e.selector)} (${state}${e.allowLanAccess ? '; LAN access allowed' : ''})`);
  }
  if (o.peers) {
    const exits = s.peers.filter((p) => p.exitNode).map((p) => cell(p.name));
    if (exits.length) out.push(`# Exit nodes offered by peers: ${exits.join(', ')}`);
    for (const p of s.peers) {
      if (!p.routes?.length || (o.activeOnly && !p.active)) continue;
      const items = p.routes.map((x) => `${cell(x.prefix)} ${x.installed ? 'installed' : `not installed: ${terminalSafe(x.why ?? '', MAX_CELL)}`}`);
      out.push(`# Routes via ${cell(p.name)}: ${items.join(', ')}`);
    }
  }
  return out;
}

export function formatStatus(s: Status, o: TableOptions, nowMs = Date.now()): string {
  const rows: string[][] = [];
  const cell = (v: unknown): string => terminalSafe(v, MAX_CELL);
  // the full name (NAME.suffix) where the mesh has a name service: what `ssh` and browsers take
  if (o.self && s.self) rows.push([cell(s.self.ips[0] ?? '-'), cell(s.self.dnsName ?? s.self.name), cell(s.self.os), 'self']);
  if (o.peers)
    for (const p of s.peers) if (!o.activeOnly || p.active) rows.push([cell(p.ips[0] ?? '-'), cell(p.dnsName ?? p.name), cell(p.os), peerState(p, nowMs)]);
  if (o.peers && !o.activeOnly) for (const d of s.devices ?? []) rows.push([cell(d.ips[0] ?? '-'), cell(d.name), 'wireguard', deviceState(d, nowMs)]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), 0));
  const lines = rows.map((r) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  '));
  lines.push(...routeLines(s, o));
  for (const h of s.health) lines.push(`# Health: ${terminalSafe(h, MAX_MESSAGE)}`);
  return lines.join('\n') + (lines.length ? '\n' : '');
}
