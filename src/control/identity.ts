// Who a node is at the control server: users own nodes and auth keys; an auth
// key carries a user or tags, and the node it registers gets the same. With
// approval required, a new node waits (in no map) until an admin approves it.
// Names and tags are checked here, at the edge, by the same rules and bounds
// as every node's map parser (netmap/identity.ts), so control never hands out
// an owner or tag that its nodes would refuse.
import type { AdminAuthKey } from './admin-rows.js';
import { ControlError } from './protocol.js';
import type { Registry } from './registry.js';
import type { AuthKeyRecord } from './store.js';
import { MAX_TAG_CHARS, MAX_TAGS_PER_NODE, tagProblem, userNameProblem } from '../netmap/identity.js';
import { terminalSafe } from '../util/text.js';
import { isoTime } from '../util/time.js';

/** Users in one network: a company's staff, not a public service; bounds the users table and `users list`. */
export const MAX_USERS = 10_000;

const bad = (message: string): never => {
  throw new ControlError('BAD_REQUEST', message);
};

/** A user name as given by an admin, by the rule every node's map parser applies (netmap/identity.ts); throws BAD_REQUEST. */
export function parseUserName(v: string): string {
  const problem = userNameProblem(v);
  if (problem) bad(`user name "${terminalSafe(v, 80)}": ${problem} (e.g. alice)`);
  return v;
}

/** A list of tags, each `tag:NAME` as maps carry them; duplicates are dropped, order kept; at most MAX_TAGS_PER_NODE. */
export function parseTags(list: string[]): string[] {
  const out = [...new Set(list.map((t) => t.trim()).filter((t) => t !== ''))];
  if (out.length === 0) bad('--tags needs at least one tag, e.g. tag:server');
  if (out.length > MAX_TAGS_PER_NODE) bad(`at most ${MAX_TAGS_PER_NODE} tags per auth key (${out.length} given)`);
  for (const t of out) {
    const problem = tagProblem(t);
    if (problem) bad(`"${terminalSafe(t, 80)}" is not a tag: ${problem}, at most ${MAX_TAG_CHARS} characters (e.g. tag:server)`);
  }
  return out;
}

/** Who owns the nodes a new auth key registers: a user, tags, or (neither) nobody. */
export interface KeyOwner {
  user: string | null;
  tags: string[];
}

/** Checks an auth key's owner against the store: the user must exist; a user and tags together are refused. */
export async function checkKeyOwner(r: Registry, user: string | undefined, tags: string[] | undefined): Promise<KeyOwner> {
  if (user !== undefined && tags !== undefined) bad('an auth key has a --user or --tags, not both (a tagged node has no owner)');
  if (tags !== undefined) return { user: null, tags: parseTags(tags) };
  if (user === undefined) return { user: null, tags: [] };
  const name = parseUserName(user);
  if (!(await r.store.getUser(name))) throw new ControlError('NOT_FOUND', `no user ${name}: create it with \`meshctl control users create ${name}\``);
  return { user: name, tags: [] };
}

export interface AdminUser {
  name: string;
  created: string;
  nodes: number;
  authKeys: number;
}

export async function listUsers(r: Registry): Promise<AdminUser[]> {
  const nodes = r.nodes();
  const keys = await r.store.listAuthKeys();
  return (await r.store.listUsers()).map((u) => ({
    name: u.name,
    created: isoTime(u.createdAtMs),
    nodes: nodes.filter((n) => n.user === u.name).length,
    authKeys: keys.filter((k) => k.user === u.name).length,
  }));
}

export async function createUser(r: Registry, raw: string, nowMs = Date.now()): Promise<{ name: string }> {
  const name = parseUserName(raw);
  return r.store.transaction(async (tx) => {
    if (await tx.getUser(name)) throw new ControlError('CONFLICT', `user ${name} exists already: see \`meshctl control users list\``);
    if ((await tx.listUsers()).length >= MAX_USERS)
      throw new ControlError('CONFLICT', `this network has ${MAX_USERS} users, the most it may have: delete some first`);
    await tx.insertUser({ name, createdAtMs: nowMs });
    return { name };
  });
}

export interface DeletedUser {
  name: string;
  /** the ids of the nodes deleted with the user (`force` only) */
  deletedNodes: number[];
  deletedAuthKeys: number;
}

/**
 * Deletes a user. While it owns nodes or auth keys this is refused, unless
 * `force`, which deletes those nodes and keys too (all in one transaction).
 */
export async function deleteUser(r: Registry, raw: string, force: boolean): Promise<DeletedUser> {
  const name = parseUserName(raw);
  return r.store.transaction(async (tx) => {
    if (!(await tx.getUser(name))) throw new ControlError('NOT_FOUND', `no user ${name}: see \`meshctl control users list\``);
    const nodes = (await tx.listNodes()).filter((n) => n.user === name);
    const keys = (await tx.listAuthKeys()).filter((k) => k.user === name);
    if (!force && (nodes.length > 0 || keys.length > 0)) {
      throw new ControlError(
        'CONFLICT',
        `user ${name} owns ${nodes.length} node(s) and ${keys.length} auth key(s): delete them first, or pass --force to delete them with the user`,
      );
    }
    for (const n of nodes) await tx.deleteNode(n.id);
    const deletedAuthKeys = await tx.deleteAuthKeysOf(name);
    await tx.deleteUser(name);
    return { name, deletedNodes: nodes.map((n) => n.id), deletedAuthKeys };
  });
}

export type { AdminAuthKey };

export function authKeyRow(k: AuthKeyRecord, nowMs = Date.now()): AdminAuthKey {
  return {
    id: k.id,
    prefix: `mskey-${k.id}`,
    user: k.user,
    tags: k.tags,
    reusable: k.reusable,
    ephemeral: k.ephemeral,
    created: isoTime(k.createdAtMs),
    expires: k.expiresAtMs === null ? null : isoTime(k.expiresAtMs),
    expired: k.expiresAtMs !== null && k.expiresAtMs <= nowMs,
    used: k.usedCount,
    revoked: k.revoked,
  };
}

export async function listAuthKeys(r: Registry): Promise<AdminAuthKey[]> {
  return (await r.store.listAuthKeys()).map((k) => authKeyRow(k));
}

/** Revokes a key by its id (or its `mskey-ID` prefix): it registers nothing from now on; nodes it registered stay. */
export async function revokeAuthKey(r: Registry, ref: string): Promise<{ id: string; alreadyRevoked: boolean }> {
  const m = /^(?:mskey-)?([0-9a-f]{12})$/.exec(ref.trim());
  if (!m) bad(`"${terminalSafe(ref, 80)}" is not an auth key id: expected the ID column of \`meshctl control authkey list\``);
  const id = m![1]!;
  const k = await r.store.getAuthKey(id);
  if (!k) throw new ControlError('NOT_FOUND', `no auth key ${id}: see \`meshctl control authkey list\``);
  if (!k.revoked) await r.store.revokeAuthKey(id);
  return { id, alreadyRevoked: k.revoked };
}

/** Lets a pending node in: it joins the maps with the next push. */
export async function approveNode(r: Registry, ref: string): Promise<{ id: number; name: string; alreadyApproved: boolean }> {
  const n = r.find(ref);
  if (!n) throw new ControlError('NODE_UNKNOWN', `no node ${terminalSafe(ref, 80)}: see \`meshctl control nodes list\``);
  if (n.pending) await r.store.updateNode(n.id, { pending: false });
  return { id: n.id, name: n.hostname, alreadyApproved: !n.pending };
}
