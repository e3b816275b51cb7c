// Redaction for text that leaves the machine (the bug report): secrets known
// by value, JSON fields whose names say secret, and anything shaped like a
// key or token, replaced by `[redacted]`. It errs towards removing too much:
// a hash or an id that looks like a key goes too. Public keys given in
// `keep` (the node keys status lists) stay in full, so a report can still be
// matched against `wg show` and the control server's node list.

export const REDACTED = '[redacted]';

/** JSON field names whose values are secrets wherever they appear. */
const SECRET_FIELD_RE = /private|secret|token|passw|auth_?key|mesh_?key|join|credential|cookie|bearer/i;

/** Patterns of secrets in free text, each replaced whole (the order matters: the specific before the generic). */
const SECRET_TEXT_RES: RegExp[] = [
  // PEM private keys of any kind
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g,
  // auth keys as the control server prints them (mskey-ID-SECRET), and any prefix-key- token of that family
  /\b[a-z]{1,8}key-[0-9A-Za-z_-]{8,}/g,
  // join strings: mesh1:… holds control URLs, the server pin and an auth key
  /\bmesh\d+:[^\s"']+/g,
  // a secret named in text: `private key: X`, `token=X`, `"authKey": "X"`; after a plain space only a value with a digit in it
  // (`auth key expired` is a message, `auth key 3f9a…` a secret)
  /((?:private[ _-]?key|secret|token|passw(?:or)?d|auth[ _-]?key|mesh[ _-]?key|join(?:[ _-]?string)?)["']?\s*[:=]\s*["']?)(?!\[redacted\])[^\s"',;]+/gi,
  /((?:private[ _-]?key|secret|token|passw(?:or)?d|auth[ _-]?key|mesh[ _-]?key|join(?:[ _-]?string)?)\s+)(?!\[redacted\])(?=[^\s"',;]*\d)[^\s"',;]{6,}/gi,
];

/** 32 bytes in base64 (a WireGuard key, private or public). */
const KEY_B64_RE = /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=/g;
/** Long hex: 32-byte keys and secrets as hex (relay mesh keys, auth key secrets), 16 bytes and up. */
const LONG_HEX_RE = /(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])/g;
/** Long base64url or base64 runs mixing cases and digits: bearer tokens, keys in other encodings. */
const LONG_TOKEN_RE = /(?<![A-Za-z0-9+/_-])(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*[A-Z])[A-Za-z0-9+/_-]{40,}={0,2}/g;

export interface Redactor {
  /** redacts a text */
  text(s: string): string;
  /** redacts a JSON value: secret-named fields, then every string in it as text */
  json(v: unknown): unknown;
}

/**
 * A redactor that removes every string in `secrets` (and its hex and base64
 * forms when it is a key), then the patterns above, and keeps the strings in
 * `keep` (public keys) where the generic key pattern would have removed them.
 */
export function makeRedactor(secrets: Iterable<string>, keep: Iterable<string> = []): Redactor {
  const kept = new Set(keep);
  const exact = new Set<string>();
  for (const s of secrets) {
    if (s.length < 6) continue;
    exact.add(s);
    if (/^[A-Za-z0-9+/]{43}=$/.test(s)) {
      const b = Buffer.from(s, 'base64');
      exact.add(b.toString('hex'));
      exact.add(b.toString('base64url'));
    }
  }
  // longest first, so a secret that contains another goes whole
  const exacts = [...exact].sort((a, b) => b.length - a.length);
  const text = (input: string): string => {
    let s = input;
    for (const e of exacts) s = s.split(e).join(REDACTED);
    for (const re of SECRET_TEXT_RES)
      s = s.replace(re, (m, named?: string) => (typeof named === 'string' && m.startsWith(named) ? named + REDACTED : REDACTED));
    s = s.replace(KEY_B64_RE, (m) => (kept.has(m) ? m : REDACTED));
    s = s.replace(LONG_HEX_RE, REDACTED);
    s = s.replace(LONG_TOKEN_RE, (m) => (kept.has(m) ? m : REDACTED));
    return s;
  };
  const json = (v: unknown): unknown => {
    if (typeof v === 'string') return text(v);
    if (Array.isArray(v)) return v.map(json);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        const key = text(k);
        out[key] = SECRET_FIELD_RE.test(k) && x !== null && typeof x !== 'boolean' && typeof x !== 'number' ? REDACTED : json(x);
      }
      return out;
    }
    return v;
  };
  return { text, json };
}
