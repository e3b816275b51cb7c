// A control server that stops (SIGTERM, an upgrade) closes every map stream
// itself. Those closes must not record the nodes offline: the next start
// presumes nodes that were connected online while they reconnect, so a peer's
// first map after the restart still lists the others online and its daemon
// keeps their tunnels (an offline peer leaves the engine with its session).
// A stream still being opened when the stop begins gets no map at all: one
// built then would show every peer offline, and its daemon would drop them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, latestMap, storeOf, Node, openStream, registerBody, tempDir, until, type Harness, type OpenStream } from './helpers.js';

const P = '/meshctl/v1';
/** long enough for the streams' close handlers to finish their writes before the database closes */
const STORE_CLOSE_DELAY_MS = 300;

async function join(h: Harness, name: string): Promise<Node> {
  const n = new Node(h.server.publicKey!);
  const r = await h.post(`${P}/register`, n.seal('register', registerBody(await h.authKey(), name)));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return n;
}

test('after a stop and start, peers whose streams the stop closed are still online in the first map', async () => {
  const dir = tempDir();
  let h = await harness({}, dir);
  const streams: OpenStream[] = [];
  try {
    const a = await join(h, 'a');
    const b = await join(h, 'b');
    const c = await join(h, 'c');
    for (const n of [a, b, c]) streams.push(await openStream(h, n));
    await until(() => latestMap(streams[0]!)?.peers.filter((p) => p.online).length === 2, 5000, 'a sees b and c online');
    // the database closes a moment after the streams (as under load, where the close handlers' writes land first)
    const store = storeOf(h);
    const close = store.close.bind(store);
    store.close = async () => {
      await new Promise((r) => setTimeout(r, STORE_CLOSE_DELAY_MS));
      await close();
    };
    await h.server.stop();
    for (const s of streams) await s.ended;
    h = await harness({ port: h.server.boundPort }, dir);
    // only a is back so far: b and c are still reconnecting
    const again = await openStream(h, new Node(h.server.publicKey!, a.priv));
    streams.push(again);
    await until(() => latestMap(again) !== undefined, 5000, 'first map after the restart');
    const peers = latestMap(again)!.peers;
    assert.deepEqual(peers.map((p) => [p.name, p.online]).sort(), [
      ['b', true],
      ['c', true],
    ]);
  } finally {
    for (const s of streams) s.req.destroy();
    await h.close();
  }
});

test('a map stream still being opened when the server stops gets no map, and the stop does not wait for it', async () => {
  const dir = tempDir();
  const h = await harness({}, dir);
  const streams: OpenStream[] = [];
  try {
    const a = await join(h, 'a');
    const b = await join(h, 'b');
    const c = await join(h, 'c');
    for (const n of [b, c]) streams.push(await openStream(h, n));
    await until(() => latestMap(streams[0]!)?.peers.filter((p) => p.online).length === 1, 5000, 'b sees c online');
    // a's map request is held at its first read of the database until the stop has begun
    const store = storeOf(h);
    const get = store.getNodeByKey.bind(store);
    let reached!: () => void;
    const atRead = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    store.getNodeByKey = async (key) => {
      reached();
      await held;
      return get(key);
    };
    const pending = openStream(h, a).catch(() => null);
    await atRead;
    // a's connection is one the stop's closeAllConnections does not see (one still in its TLS handshake then)
    const http = (h.server as unknown as { server: { closeAllConnections(): void } }).server;
    http.closeAllConnections = () => {};
    const t0 = Date.now();
    let stopMs = Number.POSITIVE_INFINITY;
    const stopped = h.server.stop().then(() => (stopMs = Date.now() - t0));
    await new Promise((r) => setTimeout(r, 50));
    release();
    const sa = await Promise.race([pending, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 3000))]);
    const lines = sa ? sa.lines().slice() : [];
    if (sa) streams.push(sa);
    for (const s of streams) s.req.destroy();
    await stopped;
    assert.deepEqual(lines, [], 'the late stream carried no map');
    assert.ok(stopMs < 3000, `the stop took ${stopMs} ms (it waited for the late stream)`);
  } finally {
    for (const s of streams) s.req.destroy();
    await h.close();
  }
});
