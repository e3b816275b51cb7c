// The relay's STUN server over real UDP on loopback: answers are rate-limited
// per source (an amplification vector otherwise), other sources still get
// answers, and the table of sources is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { bindingRequest, parseStun } from '../../src/nat/stun.js';
import { StunServer } from '../../src/relay/stun-server.js';
import { until } from './harness.js';

async function udpFrom(address: string) {
  const s = dgram.createSocket('udp4');
  const answers: { address: string; port: number }[] = [];
  s.on('message', (m) => {
    const p = parseStun(m);
    if (p?.kind === 'response') answers.push(p.mapped);
  });
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  return { s, answers, close: () => new Promise<void>((r) => s.close(() => r())) };
}

test('a burst from one source gets at most its burst of answers; another source still gets answers', async () => {
  const stun = new StunServer('127.0.0.1', 0, { perSourcePerSec: 1, perSourceBurst: 5 });
  await stun.start();
  const a = await udpFrom('127.0.0.1');
  const b = await udpFrom('127.0.0.2');
  try {
    for (let i = 0; i < 50; i++) a.s.send(bindingRequest().packet, stun.port, '127.0.0.1');
    await until(() => stun.stats.requests === 50, 3000, 'the burst arrived');
    b.s.send(bindingRequest().packet, stun.port, '127.0.0.1');
    await until(() => b.answers.length === 1, 3000, 'the other source answered');
    assert.equal(b.answers[0]!.address, '127.0.0.2');
    // 5 of burst, plus at most one more if a second passed during the burst; answers sent before B's have arrived
    assert.ok(a.answers.length <= 6, `${a.answers.length} answers to one source`);
    assert.ok(stun.stats.rateLimited >= 44, `rate limited ${stun.stats.rateLimited}`);
  } finally {
    await a.close();
    await b.close();
    await stun.stop();
  }
});

test('the table of sources is bounded; the total rate is capped whatever the sources', async () => {
  const stun = new StunServer('127.0.0.1', 0, { perSourcePerSec: 100, perSourceBurst: 100, maxSources: 3, totalPerSec: 8 });
  await stun.start();
  const socks = await Promise.all(Array.from({ length: 6 }, (_, i) => udpFrom(`127.0.0.${10 + i}`)));
  try {
    for (const s of socks) for (let i = 0; i < 3; i++) s.s.send(bindingRequest().packet, stun.port, '127.0.0.1');
    await until(() => stun.stats.requests === 18, 3000, 'all requests arrived');
    assert.ok(stun.trackedSources <= 3, `${stun.trackedSources} sources tracked`);
    assert.ok(stun.stats.rateLimited >= 18 - 9, `rate limited ${stun.stats.rateLimited}`);
  } finally {
    for (const s of socks) await s.close();
    await stun.stop();
  }
});
