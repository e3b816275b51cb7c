// The map stream as a hostile control server could send it, read by the
// daemon's own ControlClient over real HTTPS on loopback: a bad map is refused
// whole with one line naming the field (the stream and the previous map go
// on), unknown line types are ignored, maps arrive in canonical form, and a
// line that never ends is an error rather than unbounded buffering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MapLine, NetworkMap, NodeView } from '../../src/netmap/types.js';
import { ControlClient } from '../../src/daemon/control-client.js';
import { fakeControl } from './fake-control.js';
import { generatePrivateKey } from '../../src/crypto/x25519.js';
import { testKey, testNodeView } from './node-view.js';

const view = (id: number, o: Partial<NodeView> = {}): NodeView => testNodeView(id, { homeRelay: 'home', ...o });

function map(peers: NodeView[]): NetworkMap {
  return {
    self: view(1),
    peers,
    ipv4Prefix: '100.64.0.0/10',
    ipv6Prefix: 'fd7a:115c:a1e0::/48',
    relays: [{ code: 'home', url: 'https://127.0.0.1:8443', stunPort: 3478 }],
  };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a bad map is refused whole with one line naming the field; the stream goes on and unknown lines are ignored', async () => {
  const ctl = await fakeControl();
  try {
    const client = new ControlClient(ctl.url, ctl.certPem, generatePrivateKey());
    const lines: MapLine[] = [];
    const refused: string[] = [];
    const opened = ctl.nextStream();
    const stream = await client.openMap({ endpoints: [], discoKey: testKey() }, (l) => lines.push(l), 30_000, { onRefused: (m) => refused.push(m) });
    const res = await opened;
    const first = map([view(2, { addresses: ['100.64.0.2', 'FD7A:115C:A1E0:0:0:0:0:2'], endpoints: ['[FD7A::1]:41641'] })]);
    res.write(JSON.stringify({ type: 'map', map: first }) + '\n');
    const bad = map([view(2), view(3), view(4), view(5, { addresses: ['evil\n'] })]);
    res.write(JSON.stringify({ type: 'map', map: bad }) + '\n');
    res.write(JSON.stringify({ type: 'map', map: map([view(2, { os: 'linux\u001b[2J\u001b[H' })]) }) + '\n');
    res.write(JSON.stringify({ type: 'map', map: { ...map([]), ipv4Prefix: '0.0.0.0/0' } }) + '\n');
    res.write(JSON.stringify({ type: 'map', map: { ...map([]), relays: [{ code: 'x', url: 'http://relay', stunPort: 3478 }] } }) + '\n');
    res.write(JSON.stringify({ type: 'map', map: { ...map([]), relays: [{ code: 'x', url: 'https://relay', stunPort: 70000 }] } }) + '\n');
    res.write(JSON.stringify({ type: 'map', map: map([view(2, { nodeKey: 'AAAA' })]) }) + '\n');
    res.write('{"type":"keepalive"}\n{"type":"something-newer","x":1}\nnot json\n\n');
    // a line split across writes is put back together
    const second = JSON.stringify({ type: 'map', map: map([view(2), view(3)]) }) + '\n';
    res.write(second.slice(0, 100));
    await new Promise((r) => setTimeout(r, 20));
    res.write(second.slice(100));
    await until('the second good map', () => lines.filter((l) => l.type === 'map').length === 2);
    const maps = lines.filter((l): l is Extract<MapLine, { type: 'map' }> => l.type === 'map').map((l) => l.map);
    assert.deepEqual(maps[0]!.peers[0]!.addresses, ['100.64.0.2', 'fd7a:115c:a1e0::2'], 'canonical text');
    assert.deepEqual(maps[0]!.peers[0]!.endpoints, ['[fd7a::1]:41641']);
    assert.equal(maps[1]!.peers.length, 2);
    assert.equal(lines.filter((l) => l.type === 'keepalive').length, 1);
    assert.equal(lines.length, 3, 'the unknown line type is ignored');
    assert.deepEqual(refused, [
      'map from control refused: peers[3].addresses[0]: not an IP address: "evil\\n"',
      'map from control refused: peers[0].os: control characters in "linux\\u001b[2J\\u001b[H"',
      "map from control refused: ipv4Prefix: 0.0.0.0/0 is wider than /8: it would route much of the host's traffic into the mesh",
      'map from control refused: relays[0].url: not an https:// URL: "http://relay"',
      'map from control refused: relays[0].stunPort: not a port (1-65535): 70000',
      'map from control refused: peers[0].nodeKey: not a 32-byte base64 key: "AAAA"',
      `map from control refused: not JSON (${(() => {
        try {
          JSON.parse('not json');
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })()})`,
    ]);
    for (const r of refused) assert.ok(!r.includes('\n') && !r.includes('\u001b'), r);
    res.write('{"type":"gone","reason":"NODE_EXPIRED"}\n');
    res.end();
    const end = await stream.done;
    assert.equal(end.gone, 'NODE_EXPIRED');
  } finally {
    await ctl.close();
  }
});

test('a map stream line longer than the limit ends the stream with an error instead of being buffered', async () => {
  const ctl = await fakeControl();
  try {
    const client = new ControlClient(ctl.url, ctl.certPem, generatePrivateKey());
    const opened = ctl.nextStream();
    const stream = await client.openMap({ endpoints: [], discoKey: testKey() }, () => {}, 30_000, { maxLineBytes: 64 * 1024 });
    const res = await opened;
    const chunk = 'x'.repeat(16 * 1024);
    // keep writing without a newline until the client hangs up (or give up after 1 MiB)
    let written = 0;
    const closed = new Promise<void>((r) => res.on('close', () => r()));
    let open = true;
    void closed.then(() => (open = false));
    while (open && written < 1024 * 1024) {
      res.write(chunk);
      written += chunk.length;
      await new Promise((r) => setTimeout(r, 2));
    }
    const end = await Promise.race([stream.done, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    assert.ok(end, 'the stream ended');
    assert.match(end.error?.message ?? '', /map stream line longer than 65536 bytes/);
    assert.ok(written < 1024 * 1024, `the client hung up after ${written} bytes`);
  } finally {
    await ctl.close();
  }
});
