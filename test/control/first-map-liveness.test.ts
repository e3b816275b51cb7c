// A node busy reading its first map (a big network, a resync storm on a
// starved machine) leaves its TCP window full for longer than control's
// stream liveness timeout; it is slow, not dead, and must keep its stream
// rather than be cut and come back for another whole map. Real TLS on
// loopback, a reader that stops reading for several times the (shortened)
// liveness timeout, and the kernel's own TCP_USER_TIMEOUT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin } from '../../src/control/admin-client.js';
import type { Socket } from 'node:net';
import { koffi } from '../../src/util/koffi.js';
import { createAuthKey } from '../../src/control/authkeys.js';
import { firstMapTaken, unacknowledgedBytes } from '../../src/control/liveness.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { stateFiles } from '../../src/control/state-dir.js';
import { ipv6Prefix } from '../../src/control/addresses.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { MAX_NODE_ENDPOINTS } from '../../src/netmap/types.js';
import { insertTestNode } from '../helpers/control-seed.js';
import { harness, Node, openStream, tempDir, until, type OpenStream } from './helpers.js';

/** Nodes of ~0.9 KB each in a map: a first map of ~1.3 MB, many times what a reader's socket buffers take while it does not read. */
const NODES = 1500;
/** The liveness timeout of taken-in streams, shortened so a reader stopped for a few seconds passes it several times. */
const USER_TIMEOUT_MS = 1000;
/** How long the reader stops reading with its first map half taken in: three times the timeout above. */
const STALL_MS = 3 * USER_TIMEOUT_MS;

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
/**
 * Fixes the client's receive buffer (the kernel doubles it; no autotuning after): a reader that took in its first map
 * quickly would otherwise have grown it to megabytes, and a stalled reader would fill it only after many maps.
 */
function lockReceiveBuffer(socket: Socket, bytes: number): void {
  const s = socket as unknown as { _handle?: { fd?: number }; _parent?: { _handle?: { fd?: number } } };
  const fd = s._handle?.fd ?? s._parent?._handle?.fd ?? -1;
  assert.ok(fd >= 0, 'the client socket has a descriptor');
  const setsockopt = koffi.load('libc.so.6').func('int setsockopt(int, int, int, void *, uint32)') as (
    fd: number,
    l: number,
    n: number,
    v: Buffer,
    len: number,
  ) => number;
  assert.equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, Buffer.from(new Int32Array([bytes]).buffer), 4), 0);
}

async function populated(): Promise<{ dir: string; priv: Buffer }> {
  const dir = tempDir();
  const store = new SqliteStore(stateFiles(dir).db);
  const priv = generatePrivateKey();
  try {
    const authKeyId = (await createAuthKey(store, { reusable: true, ephemeral: false, expiryMs: null })).record.id;
    await ipv6Prefix(store);
    await store.transaction(async (tx) => {
      for (let i = 0; i < NODES; i++) {
        await insertTestNode(tx, i, {
          authKeyId,
          ...(i === 0 ? { nodeKey: keyToText(publicKeyOf(priv)) } : {}),
          endpoints: Array.from({ length: MAX_NODE_ENDPOINTS }, (_, k) => `10.${i % 250}.${k}.1:${41000 + k}`),
        });
      }
    });
  } finally {
    await store.close();
  }
  return { dir, priv };
}

test('a node slow to read its first map keeps its stream past the liveness timeout; the timeout applies once the map is in', { timeout: 60_000 }, async () => {
  const { dir, priv } = await populated();
  const h = await harness({ limits: { streamUserTimeoutMs: USER_TIMEOUT_MS } }, dir);
  let s: OpenStream | undefined;
  try {
    s = await openStream(h, new Node(h.server.publicKey!, priv), false);
    const stream = s;
    lockReceiveBuffer(stream.res.socket, 64 * 1024);
    // the map is written and fills the socket buffers both ways: control's side has it waiting, unacknowledged
    await until(() => h.server.mapStreamStats().streams[0]?.blocked === true, 20_000, 'the first map filling the socket');
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, STALL_MS));
    const stalledMs = Date.now() - t0;
    let ended = false;
    void stream.ended.then(() => (ended = true));
    const maps = (): number => stream.lines().filter((l) => l.startsWith('{"type":"map"')).length;
    stream.res.resume();
    await until(() => maps() > 0 || ended, 20_000, 'the whole first map after reading again');
    assert.equal(ended, false, 'control cut the stream of a reader that was slow, not dead');
    const bytes = stream.lines().find((l) => l.startsWith('{"type":"map"'))!.length;
    process.stderr.write(
      `first map of ${(bytes / 1048576).toFixed(1)} MiB read after the reader stalled ${stalledMs} ms (liveness timeout ${USER_TIMEOUT_MS} ms)\n`,
    );
    // the same stream goes on: keepalives come after the map (two ticks: the map was acknowledged at the second at the latest)
    const before = stream.lines().length;
    await until(() => stream.lines().length >= before + 2, 15_000, 'two keepalives after the first map');
    assert.equal(h.server.mapStreamStats().streams.length, 1);
    // the map is in: now a reader that stops with a whole map on its way is cut after the short timeout
    stream.res.pause();
    const t1 = Date.now();
    await admin.deleteNode(dir, 'n7');
    await until(() => h.server.mapStreamStats().streams.length === 0, 20_000, 'the stalled stream cut once its first map was in');
    process.stderr.write(`a reader stalled after its first map was cut ${Date.now() - t1} ms after the next map was due\n`);
    assert.equal(h.server.mapStreamStats().dropped, 0, 'cut by the liveness timeout, not by the unsent-bytes limit');
  } finally {
    s?.res.destroy();
    await h.close();
  }
});

test('a socket with nothing in flight has its first map taken in; SIOCOUTQ reads a count', async () => {
  const h = await harness();
  try {
    const { connect } = await import('node:tls');
    const sock = connect({ host: '127.0.0.1', port: Number(new URL(h.url).port), ca: h.server.certPem });
    await new Promise<void>((r, j) => sock.once('secureConnect', () => r()).once('error', j));
    const n = unacknowledgedBytes(sock);
    if (process.platform === 'linux') assert.equal(typeof n, 'number');
    assert.equal(firstMapTaken(sock, 0), true);
    assert.equal(firstMapTaken(sock, 1), false, 'bytes the process still holds');
    sock.destroy();
  } finally {
    await h.close();
  }
});
