// The text form of `meshctl status`: IP  HOSTNAME  OS  STATUS, where STATUS
// names the path that carries the traffic (never a bare "-", which users read
// as offline). Pure, so it is tested without a daemon.
import type { PeerStatus, Status } from '../localapi/types.js';

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
  const path = p.path.kind === 'direct' ? `direct ${p.path.endpoint}` : p.path.kind === 'relay' ? `relay "${p.path.region}"` : 'no path yet';
  if (p.active) return `active; ${path}, tx ${p.txBytes} rx ${p.rxBytes}`;
  return `idle; ${path}`;
}

export interface TableOptions {
  self: boolean;
  peers: boolean;
  activeOnly: boolean;
}

export function stoppedMessage(s: Status): string | null {
  if (s.backendState === 'Stopped') return 'meshctl is stopped.';
  if (s.backendState === 'NeedsLogin') return `Logged out.${s.control.lastError ? ` ${s.control.lastError}.` : ''} Log in with: meshctl up --login-server URL --auth-key KEY`;
  return null;
}

export function formatStatus(s: Status, o: TableOptions, nowMs = Date.now()): string {
  const rows: string[][] = [];
  if (o.self && s.self) rows.push([s.self.ips[0] ?? '-', s.self.name, s.self.os, 'self']);
  if (o.peers) for (const p of s.peers) if (!o.activeOnly || p.active) rows.push([p.ips[0] ?? '-', p.name, p.os, peerState(p, nowMs)]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), 0));
  const lines = rows.map((r) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  '));
  for (const h of s.health) lines.push(`# Health: ${h}`);
  return lines.join('\n') + (lines.length ? '\n' : '');
}
