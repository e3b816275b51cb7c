// Text forms of public keys: base64 as `wg` prints them, so a node key in
// `meshctl status --json` can be compared with `wg show` output directly.
import { KEY_LEN } from './x25519.js';

export function keyToText(k: Uint8Array): string {
  return Buffer.from(k).toString('base64');
}

/** Parses a base64 key; null unless it decodes to exactly 32 bytes. */
export function keyFromText(s: unknown): Buffer | null {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/]{43}=$/.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  return b.length === KEY_LEN ? b : null;
}
