// Auth keys: `mskey-<id>-<secret>`. The id finds the record; only SHA-256 of
// the secret is stored, compared in constant time, so a leaked database does
// not let anyone join. Single-use keys are consumed inside the registration's
// transaction, so two nodes racing with one key cannot both get in.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ControlError } from './protocol.js';
import type { AuthKeyRecord, StoreTx } from './store.js';
import { isoTime } from '../util/time.js';

const KEY_RE = /^mskey-([0-9a-f]{12})-([0-9a-f]{48})$/;

export interface AuthKeyOptions {
  reusable: boolean;
  ephemeral: boolean;
  /** lifetime; null: never expires */
  expiryMs: number | null;
  /** the owner of the nodes it registers (checked by identity.ts); null: none */
  user?: string | null;
  /** the tags of the nodes it registers (checked by identity.ts) */
  tags?: string[];
}

const hashSecret = (s: string): string => createHash('sha256').update(s).digest('hex');

export async function createAuthKey(store: StoreTx, o: AuthKeyOptions, nowMs = Date.now()): Promise<{ key: string; record: AuthKeyRecord }> {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(24).toString('hex');
  const record: AuthKeyRecord = {
    id,
    secretHash: hashSecret(secret),
    reusable: o.reusable,
    ephemeral: o.ephemeral,
    createdAtMs: nowMs,
    expiresAtMs: o.expiryMs === null ? null : nowMs + o.expiryMs,
    usedCount: 0,
    user: o.user ?? null,
    tags: o.tags ?? [],
    revoked: false,
  };
  await store.insertAuthKey(record);
  return { key: `mskey-${id}-${secret}`, record };
}

/** Checks a presented key and consumes it (call it inside the registration's transaction); throws a ControlError naming why it is refused. */
export async function redeemAuthKey(store: StoreTx, key: string, nowMs = Date.now()): Promise<AuthKeyRecord> {
  const m = KEY_RE.exec(key.trim());
  if (!m) throw new ControlError('AUTHKEY_INVALID', 'auth key is malformed: expected mskey-… as printed by `meshctl control authkey create`');
  const rec = await store.getAuthKey(m[1]!);
  const given = Buffer.from(hashSecret(m[2]!), 'hex');
  if (!rec || !timingSafeEqual(given, Buffer.from(rec.secretHash, 'hex'))) {
    throw new ControlError('AUTHKEY_INVALID', 'auth key is not known to this control server: create one with `meshctl control authkey create`');
  }
  if (rec.revoked) throw new ControlError('AUTHKEY_REVOKED', 'auth key was revoked by an admin: ask for a new one');
  if (rec.expiresAtMs !== null && rec.expiresAtMs <= nowMs) {
    throw new ControlError('AUTHKEY_EXPIRED', `auth key expired at ${isoTime(rec.expiresAtMs)}: create a new one`);
  }
  if (!rec.reusable && rec.usedCount > 0) {
    throw new ControlError('AUTHKEY_USED', 'auth key was single-use and has been used: create a new one (or a --reusable key)');
  }
  await store.markAuthKeyUsed(rec.id);
  return rec;
}
