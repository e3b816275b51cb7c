// Public-key pins: the SHA-256 of a certificate's SubjectPublicKeyInfo (DER),
// written as curl's --pinnedpubkey does (`sha256//` + standard base64). A pin
// names the key, not the certificate, so it holds across renewals that keep the
// key and is shared by replicas serving the same key. The same value comes out of
//   openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
import { createHash, X509Certificate } from 'node:crypto';

export const PIN_PREFIX = 'sha256//';
export const PIN_BYTES = 32;
/** `sha256//` and 44 base64 characters. */
export const PIN_TEXT_CHARS = PIN_PREFIX.length + 44;

/** The SPKI SHA-256 of a DER public key. */
export function spkiSha256(spkiDer: Buffer): Buffer {
  return createHash('sha256').update(spkiDer).digest();
}

/** The pin of a certificate, given as PEM, DER or an X509Certificate. */
export function certPin(cert: string | Buffer | X509Certificate): string {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return pinText(spkiSha256(x.publicKey.export({ type: 'spki', format: 'der' })));
}

export function pinText(hash: Buffer): string {
  if (hash.length !== PIN_BYTES) throw new Error(`a pin is ${PIN_BYTES} bytes, got ${hash.length}`);
  return PIN_PREFIX + hash.toString('base64');
}

/** The 32 bytes of a pin in text form, or null when it is not exactly `sha256//` + 44 base64 characters of 32 bytes. */
export function parsePin(v: unknown): Buffer | null {
  if (typeof v !== 'string' || v.length !== PIN_TEXT_CHARS || !v.startsWith(PIN_PREFIX)) return null;
  const b64 = v.slice(PIN_PREFIX.length);
  if (!/^[A-Za-z0-9+/]{43}=$/.test(b64)) return null;
  const b = Buffer.from(b64, 'base64');
  return b.length === PIN_BYTES && b.toString('base64') === b64 ? b : null;
}
