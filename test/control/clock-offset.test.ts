// A node whose wall clock is an hour off against the real control server on
// loopback: it learns the server's time from the answers' Date header, so it
// still registers, keeps its map stream and sends endpoint updates; a clock
// stepped while it runs costs one refused request, resent with the new offset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin } from '../../src/control/admin-client.js';
import { ControlServer } from '../../src/control/server.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { ControlClient } from '../../src/daemon/control-client.js';
import { MAX_SAMPLE_RTT_MS, OFFSET_IGNORED_BELOW_MS, ServerClock } from '../../src/daemon/server-clock.js';
import type { MapLine, RegisterResult } from '../../src/netmap/types.js';

const HOUR_MS = 3_600_000;

async function harness() {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-clock-'));
  const server = new ControlServer({ host: '127.0.0.1', port: 0, stateDir: dir });
  await server.start();
  const { key } = await admin.createAuthKey(dir, { reusable: true, ephemeral: false, expiryMs: null });
  return {
    key,
    client: (skewMs: { v: number }, log?: (m: string) => void) =>
      new ControlClient(`https://127.0.0.1:${server.boundPort}`, server.certPem, generatePrivateKey(), null, { wallNow: () => Date.now() + skewMs.v, log }),
    close: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const register = (c: ControlClient, key: string, hostname: string) =>
  c.call<RegisterResult>(
    'register',
    { authKey: key, hostname, os: 'linux', version: 't', discoKey: keyToText(publicKeyOf(generatePrivateKey())), endpoints: [] },
    10_000,
  );

for (const skew of [HOUR_MS, -HOUR_MS]) {
  test(`a node whose clock is ${skew > 0 ? 'an hour ahead' : 'an hour behind'} still registers, keeps its map stream and updates endpoints`, async () => {
    const h = await harness();
    const logs: string[] = [];
    try {
      const c = h.client({ v: skew }, (m) => logs.push(m));
      const r = await register(c, h.key, 'skewed');
      assert.equal(r.node.name, 'skewed');
      assert.ok(Math.abs(c.serverClock.offsetMs + skew) < OFFSET_IGNORED_BELOW_MS, `offset ${c.serverClock.offsetMs}`);
      assert.match(logs[0]!, new RegExp(`clock is 3600 s ${skew > 0 ? 'ahead of' : 'behind'} control server`));
      let maps = 0;
      const stream = await c.openMap(
        { endpoints: ['127.0.0.1:1'], discoKey: keyToText(publicKeyOf(generatePrivateKey())) },
        (l: MapLine) => void (l.type === 'map' && maps++),
        30_000,
      );
      const deadline = Date.now() + 15_000;
      while (maps === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      assert.ok(maps > 0, 'no map on the stream');
      await c.call('endpoints', { endpoints: ['127.0.0.1:2'] }, 10_000);
      stream.close();
      const ended = await stream.done;
      assert.equal(ended.gone, undefined);
    } finally {
      await h.close();
    }
  });
}

test('a clock stepped an hour while the node runs: the refused request is resent once with the new offset', async () => {
  const h = await harness();
  try {
    const skew = { v: 0 };
    const c = h.client(skew);
    await register(c, h.key, 'stepped');
    assert.equal(c.serverClock.offsetMs, 0);
    skew.v = HOUR_MS;
    await c.call('endpoints', { endpoints: ['127.0.0.1:3'] }, 10_000);
    assert.ok(Math.abs(c.serverClock.offsetMs + HOUR_MS) < OFFSET_IGNORED_BELOW_MS);
    // and back: the offset goes back to none
    skew.v = 0;
    await c.call('endpoints', { endpoints: ['127.0.0.1:4'] }, 10_000);
    assert.equal(c.serverClock.offsetMs, 0);
  } finally {
    await h.close();
  }
});

test('the offset: a sample needs a Date header and a short round trip, and small offsets are the clock being right', () => {
  const wall = 1_700_000_000_000;
  const c = new ServerClock(() => wall);
  const server = (ms: number) => new Date(ms).toUTCString();
  assert.equal(c.observe(undefined, 10), false);
  assert.equal(c.observe('yesterday-ish', 10), false);
  assert.equal(c.observe('x'.repeat(100), 10), false);
  // a delayed answer (past MAX_SAMPLE_RTT_MS) could skew the estimate by half its round trip: not taken
  assert.equal(c.observe(server(wall + HOUR_MS), MAX_SAMPLE_RTT_MS + 1), false);
  assert.equal(c.offsetMs, 0);
  assert.equal(c.observe(server(wall + 3000), 100), false);
  assert.equal(c.offsetMs, 0);
  assert.equal(c.observe(server(wall + HOUR_MS), 100), true);
  assert.ok(Math.abs(c.offsetMs - HOUR_MS) <= 1000, `${c.offsetMs}`);
  assert.ok(Math.abs(c.now() - (wall + HOUR_MS)) <= 1000);
  // within the tolerance of the one learnt: unchanged
  assert.equal(c.observe(server(wall + HOUR_MS + 2000), 100), false);
  assert.equal(c.observe(server(wall), 100), true);
  assert.equal(c.offsetMs, 0);
});
