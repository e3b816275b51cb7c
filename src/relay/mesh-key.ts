// The region's mesh key: the secret relays of one region present to each
// other. It never comes from argv (every local user sees argv in `ps` and
// /proc/PID/cmdline): it is read from a file only its owner can read, or from
// the environment. Relays compare it in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type * as Fs from 'node:fs';
import { cjsRequire, readFileSync } from '../util/cjs.js';
import { knobText, RELAY_MESH_KEY_ENV } from '../util/knobs.js';

const { statSync } = cjsRequire('node:fs') as typeof Fs;

/** The environment variable a mesh key may come from when --mesh-key is absent. */
export const MESH_KEY_ENV = RELAY_MESH_KEY_ENV;
/** At least 128 bits as hex; at most what a key file should ever hold. */
const MESH_KEY_MIN_CHARS = 32;
const MESH_KEY_MAX_CHARS = 512;
/** A key file larger than this is not a key file (and is not read into memory). */
const MESH_KEY_FILE_MAX_BYTES = 4096;
const FIX = `put it in a file only you can read and pass --mesh-key file:PATH, or set ${MESH_KEY_ENV}`;

export class MeshKeyError extends Error {
  override readonly name = 'MeshKeyError';
}

function checked(key: string, where: string): string {
  if (!new RegExp(`^[\\x21-\\x7e]{${MESH_KEY_MIN_CHARS},${MESH_KEY_MAX_CHARS}}$`).test(key)) {
    throw new MeshKeyError(
      `mesh key from ${where}: expected ${MESH_KEY_MIN_CHARS}-${MESH_KEY_MAX_CHARS} printable characters without spaces (e.g. \`openssl rand -hex 32\`)`,
    );
  }
  return key;
}

/**
 * The mesh key from `--mesh-key file:PATH`, else from the environment, else
 * none. A literal value on the command line is refused. The environment
 * variable is removed once read, so nothing this process starts inherits it.
 */
export function loadMeshKey(spec: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = knobText(MESH_KEY_ENV, env);
  delete env[MESH_KEY_ENV];
  if (spec === undefined) return fromEnv === undefined ? undefined : checked(fromEnv.trim(), MESH_KEY_ENV);
  if (!spec.startsWith('file:')) throw new MeshKeyError(`--mesh-key takes no secret on the command line (it shows in ps): ${FIX}`);
  const path = spec.slice('file:'.length);
  if (!path) throw new MeshKeyError(`--mesh-key file:PATH needs a PATH: ${FIX}`);
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile() || st.size > MESH_KEY_FILE_MAX_BYTES)
      throw new MeshKeyError(`--mesh-key ${spec}: not a key file (a regular file of at most ${MESH_KEY_FILE_MAX_BYTES} bytes)`);
    if (st.mode & 0o077) throw new MeshKeyError(`--mesh-key ${spec}: other users can read the file: chmod 600 ${path}`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof MeshKeyError) throw err;
    throw new MeshKeyError(`--mesh-key ${spec}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  return checked(text.trim(), path);
}

/** A digest of the key, so comparisons are over equal lengths. */
export function meshKeyDigest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** Whether `given` (from a ClientInfo: anything) is the mesh key, in time independent of where they differ. */
export function meshKeyMatches(given: unknown, digest: Buffer | null): boolean {
  if (!digest || typeof given !== 'string') return false;
  return timingSafeEqual(meshKeyDigest(given), digest);
}
