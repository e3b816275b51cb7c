// Before its handshake is verified a client cannot make the relay buffer for
// it: the relay stops reading the socket while control is asked, and drops a
// connection that sends more than PRE_AUTH_BACKLOG_BYTES; handshakes at once
// are capped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { FrameType, frame } from '../../src/relay/frames.js';
import { PRE_AUTH_BACKLOG_BYTES } from '../../src/relay/server.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { fakeVerify, rawHandshake, relay, until } from './harness.js';

const MiB = 1024 * 1024;

test('a client streaming data while control does not answer: the relay reads little of it and drops the connection', async () => {
  const ctl = await fakeVerify();
  ctl.st.hold = true; // the verify lookup never answers
  const R = await relay({ verifyClientsUrl: ctl.url, verifyClientsCa: ctl.caFile });
  try {
    const s = await rawHandshake(R.r.boundPort);
    await until(() => ctl.st.requests === 1, 3000, 'the relay asked control');
    const baseline = process.memoryUsage().arrayBuffers;
    let peakGrowth = 0;
    // 64 MiB of 64 KiB SendPacket frames, written as fast as the socket takes them
    const chunk = frame(FrameType.sendPacket, publicKeyOf(generatePrivateKey()), Buffer.alloc(60 * 1024, 7));
    const target = 64 * MiB;
    let flushed = 0;
    let closed = false;
    s.on('close', () => (closed = true));
    s.on('error', () => {});
    while (!closed && flushed < target) {
      const ok = s.write(chunk, (err) => {
        if (!err) flushed += chunk.length;
      });
      peakGrowth = Math.max(peakGrowth, process.memoryUsage().arrayBuffers - baseline);
      if (!ok) {
        await new Promise<void>((r) => {
          const done = (): void => (s.off('drain', done), s.off('close', done), r());
          s.on('drain', done);
          s.on('close', done);
        });
      }
    }
    await until(() => closed, 10_000, 'the connection closed');
    assert.ok(flushed < 24 * MiB, `the relay took in ${(flushed / MiB).toFixed(1)} MiB from an unverified client`);
    assert.ok(R.r.stats.preAuth.peakBufferedBytes <= PRE_AUTH_BACKLOG_BYTES + 70 * 1024, `held ${R.r.stats.preAuth.peakBufferedBytes} bytes`);
    assert.ok(peakGrowth < 48 * MiB, `buffers grew by ${(peakGrowth / MiB).toFixed(1)} MiB`);
    await until(() => R.r.stats.preAuth.connections === 0 && R.r.stats.preAuth.bufferedBytes === 0, 3000, 'the handshake ended');
    assert.equal(R.r.clients.size, 0);
  } finally {
    await R.close();
    await ctl.close();
  }
});

test('frames sent right behind the ClientInfo past the cap drop the connection; handshakes at once are capped', async () => {
  const ctl = await fakeVerify();
  ctl.st.hold = true;
  const R = await relay({ verifyClientsUrl: ctl.url, verifyClientsCa: ctl.caFile, preAuthBacklogBytes: 4096, maxHandshakes: 2 });
  try {
    // 8 KiB of pings in the ClientInfo's own TLS record: read before the relay can pause the socket
    const s = await rawHandshake(R.r.boundPort, { trailing: Buffer.concat(Array.from({ length: 8 }, () => frame(FrameType.ping, Buffer.alloc(1024)))) });
    let closed = false;
    s.on('close', () => (closed = true));
    s.on('error', () => {});
    await until(() => closed, 3000, 'dropped');
    assert.equal(R.r.stats.refused.preAuthBacklog, 1);
    // one more handshake fits, the third is answered 503
    const a = await rawHandshake(R.r.boundPort);
    const b = await rawHandshake(R.r.boundPort);
    a.on('error', () => {});
    b.on('error', () => {});
    await until(() => R.r.stats.preAuth.connections === 2, 3000, 'two handshakes open');
    const third = connect({ host: '127.0.0.1', port: R.r.boundPort, rejectUnauthorized: false });
    await new Promise((r) => third.once('secureConnect', r));
    let text = '';
    third.on('data', (d: Buffer) => (text += d.toString('latin1')));
    third.write('GET /relay HTTP/1.1\r\nHost: x\r\nUpgrade: meshctl-relay\r\nConnection: Upgrade\r\n\r\n');
    await until(() => /^HTTP\/1\.1 \d+/.test(text), 3000, 'an answer');
    assert.match(text, /^HTTP\/1\.1 503/);
    assert.ok(R.r.stats.refused.busy >= 1);
    a.destroy();
    b.destroy();
    third.destroy();
  } finally {
    await R.close();
    await ctl.close();
  }
});
