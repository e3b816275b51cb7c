// What an operator can do to the network: list, delete and expire nodes,
// create auth keys. The same functions run inside the server (over its admin
// socket, so changes reach nodes at once) or on the database directly when
// no server is running.
import { createAuthKey, type AuthKeyOptions } from './authkeys.js';
import { ControlError } from './protocol.js';
import type { Registry } from './registry.js';
import { isoTime } from '../util/time.js';

export interface AdminNode {
  id: number;
  name: string;
  addresses: string[];
  nodeKey: string;
  os: string;
  version: string;
  online: boolean;
  lastSeen: string | null;
  created: string;
  keyExpiry: string | null;
  expired: boolean;
  ephemeral: boolean;
  endpoints: string[];
}

export function listNodes(r: Registry, online: (id: number) => boolean): AdminNode[] {
  return r.store.listNodes().map((n) => ({
    id: n.id,
    name: n.hostname,
    addresses: [n.ipv4, n.ipv6],
    nodeKey: n.nodeKey,
    os: n.os,
    version: n.version,
    online: online(n.id),
    lastSeen: n.lastSeenMs === null ? null : isoTime(n.lastSeenMs),
    created: isoTime(n.createdAtMs),
    keyExpiry: n.keyExpiresAtMs === null ? null : isoTime(n.keyExpiresAtMs),
    expired: r.isExpired(n),
    ephemeral: n.ephemeral,
    endpoints: n.endpoints,
  }));
}

function mustFind(r: Registry, ref: string) {
  const n = r.find(ref);
  if (!n) throw new ControlError('NODE_UNKNOWN', `no node ${ref}: see \`meshctl control nodes list\``);
  return n;
}

export function deleteNode(r: Registry, ref: string): { id: number; name: string } {
  const n = mustFind(r, ref);
  r.store.deleteNode(n.id);
  return { id: n.id, name: n.hostname };
}

export function expireNode(r: Registry, ref: string, nowMs = Date.now()): { id: number; name: string } {
  const n = mustFind(r, ref);
  r.store.updateNode(n.id, { keyExpiresAtMs: nowMs });
  return { id: n.id, name: n.hostname };
}

export function newAuthKey(r: Registry, o: AuthKeyOptions): { key: string; expires: string | null; reusable: boolean; ephemeral: boolean } {
  const { key, record } = createAuthKey(r.store, o);
  return { key, expires: record.expiresAtMs === null ? null : isoTime(record.expiresAtMs), reusable: record.reusable, ephemeral: record.ephemeral };
}
