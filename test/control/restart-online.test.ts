// A control server that stops (SIGTERM, an upgrade) closes every map stream
// itself. Those closes must not record the nodes offline: the next start
// presumes nodes that were connected online while they reconnect, so a peer's
// first map after the restart still lists the others online and its daemon
// keeps their tunnels (an offline peer leaves the engine with its session).
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
