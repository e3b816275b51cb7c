// What an operator can do to the network: list, delete and expire nodes,
// create auth keys. The same functions run inside the server (over its admin
// socket, so changes reach nodes at once) or on the database directly when
// no server is running.
import { createAuthKey, type AuthKeyOptions } from './authkeys.js';
import { checkKeyOwner } from './identity.js';
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
  /** the owner; null for a tagged node or one registered by a key with neither */
  user: string | null;
  tags: string[];
  /** waiting for `control nodes approve` */
  pending: boolean;
}

export function listNodes(r: Registry, online: (id: number) => boolean): AdminNode[] {
  return r.nodes().map((n) => ({
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
    user: n.user,
    tags: n.tags,
    pending: n.pending,
  }));
}

function mustFind(r: Registry, ref: string) {
  const n = r.find(ref);
  if (!n) throw new ControlError('NODE_UNKNOWN', `no node ${ref}: see \`meshctl control nodes list\``);
  return n;
}

export async function deleteNode(r: Registry, ref: string): Promise<{ id: number; name: string }> {
  const n = mustFind(r, ref);
  await r.store.deleteNode(n.id);
  return { id: n.id, name: n.hostname };
}

export async function expireNode(r: Registry, ref: string, nowMs = Date.now()): Promise<{ id: number; name: string }> {
  const n = mustFind(r, ref);
  await r.store.updateNode(n.id, { keyExpiresAtMs: nowMs });
  return { id: n.id, name: n.hostname };
}

export interface NewAuthKeyInfo {
  key: string;
  id: string;
  expires: string | null;
  reusable: boolean;
  ephemeral: boolean;
  user: string | null;
  tags: string[];
}

/** Creates a key; `user` must exist, `tags` must be valid, not both (identity.ts). */
/** What an admin asks for: the key's options, and a user or tags (neither: nodes with no owner). */
export type AuthKeyRequest = Omit<AuthKeyOptions, 'user' | 'tags'> & { user?: string; tags?: string[] };

export async function newAuthKey(r: Registry, o: AuthKeyRequest): Promise<NewAuthKeyInfo> {
  const owner = await checkKeyOwner(r, o.user, o.tags);
  const { key, record } = await createAuthKey(r.store, { reusable: o.reusable, ephemeral: o.ephemeral, expiryMs: o.expiryMs, ...owner });
  return {
    key,
    id: record.id,
    expires: record.expiresAtMs === null ? null : isoTime(record.expiresAtMs),
    reusable: record.reusable,
    ephemeral: record.ephemeral,
    user: record.user,
    tags: record.tags,
  };
}
