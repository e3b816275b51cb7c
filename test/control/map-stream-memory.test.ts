// What a map stream keeps in native memory after its first map. Node's TLS
// layer keeps, per connection, an output buffer as large as the largest single
// write; a whole first map written at once left one map's worth behind on
// every stream. Control writes long lines in pieces (line-writer.ts), so what
// a stream keeps does not grow with its map.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createAuthKey } from '../../src/control/authkeys.js';
import { MAP_WRITE_PIECE_CHARS } from '../../src/control/line-writer.js';
import { Registry } from '../../src/control/registry.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { stateFiles } from '../../src/control/state-dir.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { MAX_NODE_ENDPOINTS } from '../../src/netmap/types.js';
import { mallocFigures } from '../helpers/malloc-stats.js';
import { discoKey, harness, tempDir, within, type Harness } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Nodes in the network: each with MAX_NODE_ENDPOINTS endpoints, ~0.9 KB in a map, so every map is ~200 KB. */
const NODES = 220;
/** Streams opened; each gets the ~200 KB map as its first line. */
const STREAMS = 40;

async function populated(count: number): Promise<{ dir: string; privs: Buffer[] }> {
  const dir = tempDir();
  const store = new SqliteStore(stateFiles(dir).db);
  const privs: Buffer[] = [];
  try {
    const key = (await createAuthKey(store, { reusable: true, ephemeral: false, expiryMs: null })).key;
    const reg = await Registry.open(store, { keyExpiryMs: null });
    for (let i = 0; i < count; i++) {
      const priv = generatePrivateKey();
      privs.push(priv);
      const endpoints = Array.from({ length: MAX_NODE_ENDPOINTS }, (_, j) => `10.${i % 250}.${j}.1:${41000 + j}`);
      await reg.register(keyToText(publicKeyOf(priv)), { authKey: key, hostname: `n${i}`, os: 'linux', version: 't', discoKey: discoKey(), endpoints });
    }
  } finally {
    await store.close();
  }
  return { dir, privs };
}

/** malloc's bytes in use once garbage (read buffers, strings' copies) is collected. */
function inUseAfterGc(): number {
  gc();
  gc();
  return mallocFigures()!.inUse;
}

/** Opens one stream per key from a child process; resolves with the size of the first map once every stream holds one. */
async function streamsFromChild(h: Harness, privs: Buffer[]): Promise<{ child: ChildProcess; mapBytes: number }> {
  const child = fork(fileURLToPath(new URL('./stream-clients.js', import.meta.url)), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const reply = new Promise<{ type: string; mapBytes?: number; message?: string }>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`stream clients exited (${code})`)));
  });
  child.send({ url: h.url, certPem: h.server.certPem, controlPublic: h.server.publicKey!.toString('base64'), privs: privs.map((p) => p.toString('base64')) });
  const r = await within(reply, 90_000, 'the stream clients');
  if (r.type !== 'ready') {
    child.kill();
    throw new Error(`stream clients: ${r.message}`);
  }
  return { child, mapBytes: r.mapBytes! };
}

test('a stream keeps less native memory than its first map: the map goes out in pieces', {
  skip: mallocFigures() === null && 'needs glibc mallinfo2',
}, async () => {
  const { dir, privs } = await populated(NODES);
  const h = await harness({ limits: { maxSeenNoncesPerKey: 10_000 } }, dir);
  const children: ChildProcess[] = [];
  try {
    // one stream first, so what the first connection costs once (TLS context, code paths) is counted before
    const first = await streamsFromChild(h, privs.slice(0, 1));
    children.push(first.child);
    const mapBytes = first.mapBytes;
    assert.ok(mapBytes > 8 * MAP_WRITE_PIECE_CHARS, `maps are ${mapBytes} B: too small to tell`);
    const before = inUseAfterGc();
    children.push((await streamsFromChild(h, privs.slice(1, 1 + STREAMS))).child);
    const perStream = (inUseAfterGc() - before) / STREAMS;
    // a TLS connection, its http request and response and the stream's state take ~60-90 KiB of native memory
    // whatever the map; a map's worth more per stream (~230 KB here) is what the TLS layer kept of a whole map
    // written at once
    assert.ok(
      perStream < mapBytes * 0.65,
      `each stream keeps ${Math.round(perStream / 1024)} KiB of native memory; its map is ${Math.round(mapBytes / 1024)} KiB`,
    );
  } finally {
    for (const c of children) c.kill();
    await h.close();
  }
});
