// Join strings: everything a node needs to join, in one line an admin can
// paste or scan: the control server's URL(s), the SHA-256 of its certificate's
// public key (the node trusts the server by that alone: no CA file) and an auth
// key. `meshctl control authkey create --join` and the admin page make one,
// `meshctl up --join` (or --join-file, or $MESHCTL_JOIN) uses one. This module is the format alone,
// shared by control and the CLI.
//
// Form: `mesh1:` + base64url (no padding) of a small binary record:
//   32 bytes   SHA-256 of the server certificate's SubjectPublicKeyInfo (DER)
//   1 byte     auth key length K (1..MAX_JOIN_AUTH_KEY_BYTES), K bytes of printable ASCII
//   1 byte     URL count N (1..MAX_JOIN_URLS), then per URL: 1 byte length L, L bytes `https://HOST[:PORT]`
//   4 bytes    the first 4 bytes of the SHA-256 of all the bytes before
// Binary rather than JSON: a JSON record carries its field names and a base64 hash
// inside the base64, about a third longer (252 against 185 characters for one URL), and a shorter string makes a QR code a phone scans
// from a terminal. base64url and the `:` of the prefix hold no character a shell,
// a URL, a YAML or an .env file treats specially, and no space a paste could break
// at. The number in the prefix is the format's version: a later format gets
// `mesh2:`, and this parser names the version it cannot read. The checksum turns a
// truncated or mistyped paste into "damaged" rather than a confusing pin mismatch.
//
// The string holds the auth key: it is a secret. It is never logged, never shown in
// an error, never put in status; the daemon only ever sees the key (inside the local
// API request, as with --auth-key) and the pin.
import { createHash } from 'node:crypto';
import { isPrintable } from '../util/text.js';
import { PIN_BYTES, parsePin, pinText } from '../crypto/spki-pin.js';

export const JOIN_PREFIX = 'mesh1:';
/** An auth key is ~60 characters (mskey-<12 hex>-<48 hex>); twice that leaves room for a longer kind of key. */
export const MAX_JOIN_AUTH_KEY_BYTES = 128;
/** Control replicas a node may be told about: a handful behind different addresses; more is a mistake. */
export const MAX_JOIN_URLS = 4;
/** One URL: `https://` and a DNS name (253) with a port fit in 255, the most a length byte says. */
export const MAX_JOIN_URL_BYTES = 255;
const CHECK_BYTES = 4;
/** The longest record the fields above allow, in base64url characters, with the prefix: anything longer is refused unread. */
export const MAX_JOIN_STRING_CHARS =
  JOIN_PREFIX.length + Math.ceil(((PIN_BYTES + 1 + MAX_JOIN_AUTH_KEY_BYTES + 1 + MAX_JOIN_URLS * (1 + MAX_JOIN_URL_BYTES) + CHECK_BYTES) * 4) / 3);

export interface JoinInfo {
  /** control URLs, each `https://HOST[:PORT]` in canonical form, the first tried first */
  urls: string[];
  /** `sha256//BASE64` of the control server's public key */
  pin: string;
  authKey: string;
}

export class JoinStringError extends Error {
  override name = 'JoinStringError';
}

const FIX = 'copy the whole line `meshctl control authkey create --join` printed';

/** The canonical `https://HOST[:PORT]` of a control URL, or the reason it is not one. */
export function controlOrigin(text: string): string | { problem: string } {
  if (!isPrintable(text, MAX_JOIN_URL_BYTES) || /[^\x21-\x7e]/.test(text)) return { problem: `not 1-${MAX_JOIN_URL_BYTES} printable ASCII characters` };
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return { problem: 'not a URL' };
  }
  if (u.protocol !== 'https:') return { problem: 'not an https:// URL' };
  if (u.username || u.password) return { problem: 'it carries a user name or password' };
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) return { problem: 'it has a path, query or fragment: give https://HOST:PORT only' };
  if (u.origin.length > MAX_JOIN_URL_BYTES) return { problem: `longer than ${MAX_JOIN_URL_BYTES} characters` };
  return u.origin;
}

const check = (body: Buffer): Buffer => createHash('sha256').update(body).digest().subarray(0, CHECK_BYTES);

export function encodeJoin(info: JoinInfo): string {
  const pin = parsePin(info.pin);
  if (!pin) throw new JoinStringError(`"${info.pin}" is not a sha256// public-key pin`);
  const key = Buffer.from(info.authKey, 'ascii');
  if (!isPrintable(info.authKey, MAX_JOIN_AUTH_KEY_BYTES) || /[^\x21-\x7e]/.test(info.authKey))
    throw new JoinStringError(`the auth key is not 1-${MAX_JOIN_AUTH_KEY_BYTES} printable ASCII characters`);
  if (info.urls.length < 1 || info.urls.length > MAX_JOIN_URLS) throw new JoinStringError(`a join string holds 1-${MAX_JOIN_URLS} control URLs`);
  const parts: Buffer[] = [pin, Buffer.of(key.length), key, Buffer.of(info.urls.length)];
  for (const url of info.urls) {
    const o = controlOrigin(url);
    if (typeof o !== 'string') throw new JoinStringError(`control URL "${url}": ${o.problem}`);
    parts.push(Buffer.of(o.length), Buffer.from(o, 'ascii'));
  }
  const body = Buffer.concat(parts);
  return JOIN_PREFIX + Buffer.concat([body, check(body)]).toString('base64url');
}

/**
 * A join string, every field checked, or a JoinStringError with one line naming the defect and the fix.
 * The messages never quote the string or the key: they are secret.
 */
export function parseJoin(text: string): JoinInfo {
  const s = text.trim();
  if (s.length > MAX_JOIN_STRING_CHARS) throw new JoinStringError(`the join string is longer than ${MAX_JOIN_STRING_CHARS} characters: ${FIX}`);
  const version = /^mesh(\d{1,3}):/.exec(s);
  if (!version) throw new JoinStringError(`not a join string (it starts with ${JOIN_PREFIX}): ${FIX}`);
  if (`mesh${version[1]}:` !== JOIN_PREFIX)
    throw new JoinStringError(
      `the join string is format ${version[1]}, this meshctl reads format 1 (${JOIN_PREFIX}): upgrade meshctl, or make the string with this version`,
    );
  const b64 = s.slice(JOIN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]*$/.test(b64))
    throw new JoinStringError(`the join string has characters that are not base64url (spaces, line breaks, '=' or '+'): ${FIX}`);
  if (b64.length % 4 === 1) throw new JoinStringError(`the join string is cut short: ${FIX}`);
  const raw = Buffer.from(b64, 'base64url');
  if (raw.length < PIN_BYTES + 1 + 1 + 1 + 1 + CHECK_BYTES) throw new JoinStringError(`the join string is cut short: ${FIX}`);
  const body = raw.subarray(0, raw.length - CHECK_BYTES);
  if (!check(body).equals(raw.subarray(raw.length - CHECK_BYTES)))
    throw new JoinStringError(`the join string is damaged (its checksum does not match): ${FIX}`);
  let at = 0;
  const take = (n: number, what: string): Buffer => {
    if (at + n > body.length) throw new JoinStringError(`the join string ends inside the ${what}: ${FIX}`);
    const b = body.subarray(at, at + n);
    at += n;
    return b;
  };
  const pin = pinText(Buffer.from(take(PIN_BYTES, 'public-key hash')));
  const keyLen = take(1, 'auth key length')[0]!;
  if (keyLen < 1 || keyLen > MAX_JOIN_AUTH_KEY_BYTES)
    throw new JoinStringError(`the join string's auth key is ${keyLen} bytes, not 1-${MAX_JOIN_AUTH_KEY_BYTES}: ${FIX}`);
  const key = take(keyLen, 'auth key');
  if (key.some((c) => c < 0x21 || c > 0x7e)) throw new JoinStringError(`the join string's auth key has spaces, control or non-ASCII characters: ${FIX}`);
  const count = take(1, 'URL count')[0]!;
  if (count < 1 || count > MAX_JOIN_URLS) throw new JoinStringError(`the join string names ${count} control URLs, not 1-${MAX_JOIN_URLS}: ${FIX}`);
  const urls: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = take(1, `length of URL ${i + 1}`)[0]!;
    if (len < 1) throw new JoinStringError(`the join string's control URL ${i + 1} is empty: ${FIX}`);
    const bytes = take(len, `control URL ${i + 1}`);
    const text = bytes.some((c) => c < 0x21 || c > 0x7e) ? null : bytes.toString('ascii');
    const o = text === null ? { problem: 'not printable ASCII' } : controlOrigin(text);
    // the URL is not secret, but it is cut and made safe to show all the same: it came from a paste
    if (typeof o !== 'string' || o !== text)
      throw new JoinStringError(
        `the join string's control URL ${i + 1} is not https://HOST[:PORT] in canonical form${typeof o === 'string' ? '' : ` (${o.problem})`}: ${FIX}`,
      );
    if (urls.includes(o)) throw new JoinStringError(`the join string names control URL ${i + 1} twice: ${FIX}`);
    urls.push(o);
  }
  if (at !== body.length) throw new JoinStringError(`the join string has ${body.length - at} bytes after its last field: ${FIX}`);
  return { urls, pin, authKey: key.toString('ascii') };
}
