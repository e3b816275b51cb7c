// The identity every control replica on one PostgreSQL database shows nodes:
// the control key (nodes seal requests to it) and, unless the operator brings
// a certificate, the self-signed TLS certificate and key. They live in the
// database's `secrets` table (readable by the database's owner role only), so a
// replica started with an empty state dir takes the network's identity from the
// database; the first replica stores its own. Each is also written to the state
// dir when it is missing there, so `control ca` and `authkey create --join`
// read the same identity as before. A state dir holding another identity than
// the database is refused: nodes trust one key, and two would split them.
import { existsSync, readFileSync } from '../util/cjs.js';
import { generatePrivateKey, publicKeyOf } from '../crypto/x25519.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { StateError } from './open-database.js';
import { newCertificate, stateFiles } from './state-dir.js';

/** What the shared identity needs of the store: a get-or-store of one named secret (PgStore.sharedSecret). */
export interface SecretStore {
  sharedSecret(name: string, make: () => string): Promise<string>;
  readonly description: string;
}

/** The secrets' names in the table. */
const CONTROL_KEY = 'control_key';
const TLS_IDENTITY = 'tls_identity';

const differs = (file: string, store: SecretStore, what: string): StateError =>
  new StateError(
    `${file} holds another ${what} than ${store.description}, which every replica shares: nodes trust one; ` +
      `move ${file} aside to take the database's, or point --db at this server's own database`,
  );

/** The network's control key: the database's, else this state dir's (or a new one), stored for the other replicas. */
export async function sharedControlKey(store: SecretStore, dir: string): Promise<{ privateKey: Buffer; publicKey: Buffer }> {
  const f = stateFiles(dir).controlKey;
  const local = existsSync(f) ? readFileSync(f, 'utf8').trim() : null;
  const text = await store.sharedSecret(CONTROL_KEY, () => local ?? generatePrivateKey().toString('base64'));
  const priv = Buffer.from(text, 'base64');
  if (priv.length !== 32) throw new StateError(`the control key in ${store.description} is not a 32-byte base64 key: restore the database from a backup`);
  if (local === null) writeFileAtomic(f, `${text}\n`);
  else if (local !== text) throw differs(f, store, 'control key');
  return { privateKey: priv, publicKey: publicKeyOf(priv) };
}

/** The network's self-signed TLS identity (certificate and key together), like the control key. */
export async function sharedCertificate(store: SecretStore, dir: string, listenHost: string): Promise<{ cert: string; key: string; created: boolean }> {
  const f = stateFiles(dir);
  const local = existsSync(f.cert) && existsSync(f.key) ? { cert: readFileSync(f.cert, 'utf8'), key: readFileSync(f.key, 'utf8') } : null;
  let created = false;
  const text = await store.sharedSecret(TLS_IDENTITY, () => {
    if (local) return JSON.stringify(local);
    created = true;
    const c = newCertificate(listenHost);
    return JSON.stringify({ cert: c.certPem, key: c.keyPem });
  });
  let id: { cert: string; key: string };
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (typeof o.cert !== 'string' || typeof o.key !== 'string') throw new Error('fields');
    id = { cert: o.cert, key: o.key };
  } catch {
    throw new StateError(`the TLS identity in ${store.description} is damaged: restore the database from a backup`);
  }
  if (local === null) {
    writeFileAtomic(f.key, id.key);
    writeFileAtomic(f.cert, id.cert, 0o644);
  } else if (local.cert !== id.cert || local.key !== id.key) throw differs(f.cert, store, 'TLS certificate');
  return { ...id, created };
}
