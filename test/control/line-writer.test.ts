// LineWriter on a real loopback TCP connection: a long line arrives whole and
// unchanged (a surrogate pair at a piece boundary included), the socket is
// never handed more than one piece at once, and the caller hears once when the
// line is all handed over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { LineWriter } from '../../src/control/line-writer.js';
import { until } from './helpers.js';

async function socketPair(): Promise<{ a: Socket; b: Socket; close: () => void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const a = connect((server.address() as { port: number }).port, '127.0.0.1');
  const b = await accepted;
  return {
    a,
    b,
    close: () => {
      a.destroy();
      b.destroy();
      server.close();
    },
  };
}

test('a long line goes out in pieces, arrives unchanged, and the writer says once when it is done', async () => {
  const { a, b, close } = await socketPair();
  try {
    const piece = 1000;
    // a non-BMP character (two UTF-16 units) straddles every piece boundary
    const unit = `${'x'.repeat(piece - 1)}\u{1F600}`;
    const line = `${unit.repeat(300)}end\n`;
    const got: Buffer[] = [];
    b.on('data', (c: Buffer) => got.push(c));
    const writes: string[] = [];
    let writable = 0;
    const sink = {
      get writableLength() {
        return a.writableLength;
      },
      write(chunk: string, cb?: (err?: Error | null) => void): boolean {
        // every write finds the socket's buffer empty: the previous piece was flushed first
        assert.equal(a.writableLength, 0, `a piece was written while ${a.writableLength} bytes were still unsent`);
        writes.push(chunk);
        return a.write(chunk, cb);
      },
    };
    const w = new LineWriter(sink, () => writable++, piece);
    assert.equal(w.write(line, Buffer.byteLength(line)), false);
    assert.equal(w.busy, true);
    assert.ok(w.unsentBytes > 0);
    await until(() => !w.busy && Buffer.concat(got).length === Buffer.byteLength(line), 10_000, 'the whole line');
    assert.equal(Buffer.concat(got).toString('utf8'), line);
    assert.ok(writes.length > 300, `${writes.length} pieces`);
    assert.ok(
      writes.every((s) => s.length <= piece),
      'no piece over the limit',
    );
    await until(() => writable === 1 || a.writableLength === 0, 10_000, 'writable');
    assert.ok(writable <= 1);
    assert.equal(w.unsentBytes, a.writableLength);
    // a short line is written as it is
    assert.equal(w.write('{"type":"keepalive"}\n', 21), true);
    assert.throws(() => new LineWriter(sink, () => {}, 1), RangeError);
  } finally {
    close();
  }
});

test('onSent is called once: after the last piece of a long line is flushed, after a short line is flushed, and when the connection fails mid-line', async () => {
  const { a, b, close } = await socketPair();
  try {
    const got: Buffer[] = [];
    b.on('data', (c: Buffer) => got.push(c));
    const w = new LineWriter(a, () => {}, 1000);
    const line = `${'y'.repeat(50_000)}\n`;
    let sent = 0;
    let receivedWhenSent = -1;
    w.write(line, line.length, () => {
      sent++;
      receivedWhenSent = a.bytesWritten;
    });
    await until(() => sent === 1, 10_000, 'onSent for the long line');
    // every piece had been handed to the kernel when it was called
    assert.equal(receivedWhenSent, line.length);
    assert.equal(w.busy, false);
    let shortSent = 0;
    w.write('{"type":"keepalive"}\n', 21, () => shortSent++);
    await until(() => shortSent === 1, 10_000, 'onSent for the short line');
    // a line cut off by a failed connection still reports once, so what waits on it is not held forever
    b.pause();
    const big = `${'z'.repeat(4_000_000)}\n`;
    let cutSent = 0;
    w.write(big, big.length, () => cutSent++);
    await until(() => a.writableLength > 0, 10_000, 'the socket backed up');
    a.destroy();
    await until(() => cutSent === 1, 10_000, 'onSent after the connection failed');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sent + shortSent + cutSent, 3, 'each called once');
  } finally {
    close();
  }
});
