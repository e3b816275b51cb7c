// Admin API tokens: `msadm-<id>-<secret>`, the secret 32 random bytes (256
// bits). The id finds the record; only SHA-256 of the secret is stored (meta
// key `admin_web_tokens`), compared in constant time. A fast hash is enough
// here: scrypt and its kin slow down guessing of low-entropy passwords, but a
// 256-bit random secret cannot be guessed from its hash at any speed, and a
// slow hash would make every Bearer request (and every wrong guess) cost tens
// of milliseconds of CPU. The token is printed once, at creation.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ControlError } from '../protocol.js';
import type { ControlStore, StoreTx } from '../store.js';
import { isoTime } from '../../util/time.js';
import { isPrintable, terminalSafe } from '../../util/text.js';

const TOKENS_META_KEY = 'admin_web_tokens';
const TOKEN_RE = /^msadm-([0-9a-f]{12})-([A-Za-z0-9_-]{43})$/;
const ID_RE = /^(?:msadm-)?([0-9a-f]{12})$/;
/** Tokens kept at once: one per operator or script of a team; bounds the meta value read on every request. */
export const MAX_ADMIN_TOKENS = 100;
/** A token's name: a label for `token list`, e.g. alice-laptop. */
const MAX_TOKEN_NAME_CHARS = 64;

interface TokenRecord {
  id: string;
  name: string;
  /** SHA-256 of the secret, hex */
  hash: string;
  createdAtMs: number;
}

/** One row of `control admin token list`: no secret, no hash. */
export interface AdminTokenRow {
  id: string;
  name: string;
  created: string;
}

const hashSecret = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The stored records; a value that does not parse is no tokens (nothing is authorized by a damaged entry). */
async function load(store: Pick<StoreTx, 'getMeta'>): Promise<TokenRecord[]> {
  const raw = await store.getMeta(TOKENS_META_KEY);
  if (raw === null) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    if (!Array.isArray(v)) return [];
    return v.filter(
      (t): t is TokenRecord =>
        typeof t === 'object' &&
        t !== null &&
        typeof t.id === 'string' &&
        typeof t.name === 'string' &&
        typeof t.hash === 'string' &&
        /^[0-9a-f]{64}$/.test(t.hash) &&
        typeof t.createdAtMs === 'number',
    );
  } catch {
    return [];
  }
}

const save = async (store: Pick<StoreTx, 'setMeta'>, list: TokenRecord[]): Promise<void> => {
  await store.setMeta(TOKENS_META_KEY, JSON.stringify(list));
};

function parseName(raw: string | undefined): string {
  const name = (raw ?? '').trim() || 'admin';
  if (!isPrintable(name, MAX_TOKEN_NAME_CHARS)) {
    throw new ControlError('BAD_REQUEST', `token name "${terminalSafe(name, 80)}": at most ${MAX_TOKEN_NAME_CHARS} printable characters (e.g. alice-laptop)`);
  }
  return name;
}

export async function createAdminToken(store: ControlStore, rawName?: string, nowMs = Date.now()): Promise<AdminTokenRow & { token: string }> {
  const name = parseName(rawName);
  // read, change and write the list in one transaction, so two at once cannot lose one
  return store.transaction(async (tx) => {
    const list = await load(tx);
    if (list.length >= MAX_ADMIN_TOKENS) throw new ControlError('CONFLICT', `there are ${MAX_ADMIN_TOKENS} admin tokens, the most kept: revoke some first`);
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    list.push({ id, name, hash: hashSecret(secret), createdAtMs: nowMs });
    await save(tx, list);
    return { id, name, created: isoTime(nowMs), token: `msadm-${id}-${secret}` };
  });
}

export async function listAdminTokens(store: ControlStore): Promise<AdminTokenRow[]> {
  return (await load(store)).map((t) => ({ id: t.id, name: t.name, created: isoTime(t.createdAtMs) }));
}

export async function revokeAdminToken(store: ControlStore, ref: string): Promise<{ id: string }> {
  const m = ID_RE.exec(ref.trim());
  if (!m) throw new ControlError('BAD_REQUEST', `"${terminalSafe(ref, 80)}" is not an admin token id: see \`meshctl control admin token list\``);
  const id = m[1]!;
  return store.transaction(async (tx) => {
    const list = await load(tx);
    const rest = list.filter((t) => t.id !== id);
    if (rest.length === list.length) throw new ControlError('NOT_FOUND', `no admin token ${id}: see \`meshctl control admin token list\``);
    await save(tx, rest);
    return { id };
  });
}

/** The id of the token `presented` is, or null when it is malformed or not known. */
export async function verifyAdminToken(store: ControlStore, presented: string): Promise<string | null> {
  const m = TOKEN_RE.exec(presented.trim());
  if (!m) return null;
  const rec = (await load(store)).find((t) => t.id === m[1]);
  const given = Buffer.from(hashSecret(m[2]!), 'hex');
  if (!rec || !timingSafeEqual(given, Buffer.from(rec.hash, 'hex'))) return null;
  return rec.id;
}

/** Whether the token with this id still exists (a revoked token's sessions end with it). */
export async function adminTokenExists(store: ControlStore, id: string): Promise<boolean> {
  return (await load(store)).some((t) => t.id === id);
}

/** The admin socket's token routes (`control admin token …`); undefined for any other route. */
export async function adminTokenRoute(store: ControlStore, route: string, body: unknown): Promise<unknown> {
  const o = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const text = (k: string): string | undefined => {
    const v = o[k];
    if (v !== undefined && typeof v !== 'string') throw new ControlError('BAD_REQUEST', `${k} must be a string`);
    return v;
  };
  if (route === 'GET /admin/tokens') return listAdminTokens(store);
  if (route === 'POST /admin/tokens') return createAdminToken(store, text('name'));
  if (route === 'POST /admin/tokens/revoke') return revokeAdminToken(store, text('id') ?? '');
  return undefined;
}
