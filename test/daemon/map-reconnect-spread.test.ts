// After control ends every map stream at once (a restart, a dead replica), the
// nodes' reconnects are spread over a window that grows with the network they
// last saw, instead of all landing in the same instant: read by the daemon's
// own ControlClient over real HTTPS on loopback, reconnecting at once as soon
// as `done` resolves (the daemon's loop adds its backoff on top).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkMap, NodeView } from '../../src/netmap/types.js';
import { ControlClient, MAP_RECONNECT_SPREAD_MAX_MS, mapReconnectWindowMs, type MapStream } from '../../src/daemon/control-client.js';
import { fakeControl } from './fake-control.js';
import { generatePrivateKey } from '../../src/crypto/x25519.js';
import { testKey, testNodeView } from './node-view.js';

/** Node `id` with addresses that stay valid past 255. */
const view = (id: number): NodeView =>
  testNodeView(id, {
    addresses: [`100.64.${id >> 8}.${id & 255}`, `fd7a:115c:a1e0::${id.toString(16)}`],
    allowedIps: [`100.64.${id >> 8}.${id & 255}/32`, `fd7a:115c:a1e0::${id.toString(16)}/128`],
    endpoints: [`192.0.2.1:${1000 + id}`],
  });

function mapOf(peers: number): NetworkMap {
  return {
    self: view(1),
    peers: Array.from({ length: peers }, (_, i) => view(i + 2)),
    ipv4Prefix: '100.64.0.0/10',
    ipv6Prefix: 'fd7a:115c:a1e0::/48',
    relays: [],
  };
}

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Clients ended at once: 12 uniform draws all within a third of the window has a chance under 1 in 10,000. */
const CLIENTS = 12;
/** Peers in the map: a window of 1.5 s at 1 ms per peer. */
const PEERS = 1500;

test('streams ended by control all at once reconnect spread over a window that grows with the network', { timeout: 60_000 }, async () => {
  const ctl = await fakeControl();
  const streams: MapStream[] = [];
  try {
    const windowMs = mapReconnectWindowMs(PEERS);
    assert.equal(windowMs, 1500);
    assert.equal(mapReconnectWindowMs(1_000_000), MAP_RECONNECT_SPREAD_MAX_MS, 'bounded');
    const line = `${JSON.stringify({ type: 'map', map: mapOf(PEERS) })}\n`;
    const clients = Array.from({ length: CLIENTS }, () => new ControlClient(ctl.url, ctl.certPem, generatePrivateKey()));
    let maps = 0;
    const body = { endpoints: [], discoKey: testKey() };
    for (const c of clients) {
      const opened = ctl.nextStream();
      streams.push(await c.openMap(body, (l) => void (l.type === 'map' && maps++), 30_000, { deltas: false }));
      (await opened).write(line);
    }
    await until('every first map', () => maps === CLIENTS, 30_000);
    // every new stream's arrival, in ms after control ended them all
    const arrivals: number[] = [];
    const spreads: number[] = [];
    const t0 = performance.now();
    for (const s of [...ctl.streams]) s.destroy();
    // as the daemon's loop does, minus its backoff: open again as soon as the stream is done
    await Promise.all(
      clients.map(async (c, i) => {
        const end = await streams[i]!.done;
        spreads.push(end.spreadMs);
        const opened = ctl.nextStream();
        streams[i] = await c.openMap(body, () => {}, 30_000, { deltas: false });
        await opened;
        arrivals.push(performance.now() - t0);
      }),
    );
    arrivals.sort((a, b) => a - b);
    const range = arrivals[arrivals.length - 1]! - arrivals[0]!;
    process.stderr.write(
      `reconnect spread: ${CLIENTS} clients back ${arrivals.map((x) => x.toFixed(0)).join(', ')} ms after control ended their streams (window ${windowMs} ms)\n`,
    );
    for (const x of spreads) assert.ok(x >= 0 && x <= windowMs, `spread ${x} ms within the window`);
    // uniform over the window: all within a third of it has a chance of 12 × (1/3)^11, under 1 in 10,000
    assert.ok(range >= windowMs / 3, `reconnects spread over ${range.toFixed(0)} ms only`);
    assert.ok(arrivals[arrivals.length - 1]! < windowMs + 5000, 'none waits much past the window');

    // a stream the caller closes itself is no storm: the next one opens at once
    const end = (streams[0]!.close(), await streams[0]!.done);
    assert.equal(end.spreadMs, 0);
    streams[0] = await clients[0]!.openMap(body, () => {}, 30_000, { deltas: false });
  } finally {
    for (const s of streams) s.close();
    await ctl.close();
  }
});
