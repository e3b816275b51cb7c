// `--mesh-with`: another relay of the region, as a typed value. Kept apart from
// mesh.ts so the CLI can check the flag without loading the relay client.

/** Another relay of the region: its URL and the SHA-256 of its certificate (hex), pinned. */
export interface MeshPeer {
  url: string;
  fingerprint?: string;
}

/**
 * `https://HOST:PORT[?fingerprint=HEX]` (the fingerprint as that relay prints
 * it at start, `certificate sha256 …`; colons allowed). Throws Error with a
 * one-line message.
 */
export function parseMeshPeer(text: string): MeshPeer {
  const bad = (why: string): never => {
    throw new Error(`--mesh-with ${JSON.stringify(text.slice(0, 200))}: ${why}`);
  };
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return bad('expected https://HOST:PORT?fingerprint=SHA256HEX');
  }
  if (u.protocol !== 'https:' || u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.hash)
    bad('expected https://HOST:PORT?fingerprint=SHA256HEX');
  const keys = [...u.searchParams.keys()];
  if (keys.some((k) => k !== 'fingerprint') || keys.length > 1) bad('the only parameter is fingerprint=SHA256HEX');
  const fp = u.searchParams.get('fingerprint');
  const base = `https://${u.host}`;
  if (fp === null) return { url: base };
  const hex = fp.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) bad("fingerprint must be the 64 hex digits of the certificate's SHA-256 (the relay prints it at start)");
  return { url: base, fingerprint: hex };
}
