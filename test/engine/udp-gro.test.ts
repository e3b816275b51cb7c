// UDP GRO on receive, on loopback: a sender using UDP_SEGMENT (one sendmsg,
// many same-size datagrams, which reach a socket with UDP_GRO on unsegmented)
// to the device's sockets. Whoever reads — the reader thread with UDP_GRO on,
// the event loop with it off, the event loop finding reads merged while it was
// on, or both in turn as bursts come and go — every datagram is delivered
// intact, in order, with its own size. The event loop's splitter is checked
// on its own for each kind of message that can merge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { koffi } from '../../src/util/koffi.js';
import { UdpBind, type UdpBindOptions } from '../../src/engine/conn/udp.js';
import { udpHandle } from '../../src/engine/conn/udp-reader.js';
import { SPLIT_DONE, SPLIT_FAILED, SPLIT_SINGLE, splitMerged } from '../../src/engine/conn/gro-split.js';
import { until } from '../helpers/loopback-pair.js';
import { readFileSync } from 'node:fs';

const SOL_UDP = 17;
const UDP_SEGMENT = 103;
const UDP_GRO = 104;
const libc = koffi.load('libc.so.6');
const sendmsg = libc.func('long sendmsg(int, void *, int)') as (fd: number, msg: unknown, flags: number) => number;
const setsockopt = libc.func('int setsockopt(int, int, int, void *, uint32)') as (fd: number, l: number, n: number, v: Buffer, len: number) => number;

/** A sender that hands the kernel many datagrams in one sendmsg with UDP_SEGMENT, as upstream wireguard-go does. */
class GsoSender {
  private readonly s = dgram.createSocket('udp4');
  private readonly size = 16 + 16 + 24 + 56 + 65536;
  private readonly mem = koffi.alloc('uint8', this.size);
  private readonly view = Buffer.from(koffi.view(this.mem, this.size));
  private readonly base = koffi.address(this.mem) as bigint;

  async open(): Promise<void> {
    await new Promise<void>((r) => this.s.bind(0, '127.0.0.1', () => r()));
  }

  /** Sends `segs` (all of one size but the last, which may be shorter) to 127.0.0.1:port in one system call. */
  send(port: number, segs: Buffer[]): void {
    const v = this.view;
    v.fill(0, 0, 112);
    v.writeUInt16LE(2, 0); // sockaddr_in: AF_INET, port, 127.0.0.1
    v.writeUInt16BE(port, 2);
    v.writeUInt32BE(0x7f000001, 4);
    const data = Buffer.concat(segs);
    data.copy(v, 112);
    v.writeBigUInt64LE(this.base + 112n, 16); // iovec
    v.writeBigUInt64LE(BigInt(data.length), 24);
    v.writeBigUInt64LE(18n, 32); // cmsghdr: CMSG_LEN(sizeof(u16)), SOL_UDP, UDP_SEGMENT, the segment size
    v.writeInt32LE(SOL_UDP, 40);
    v.writeInt32LE(UDP_SEGMENT, 44);
    v.writeUInt16LE(segs[0]!.length, 48);
    const h = 56; // msghdr
    v.writeBigUInt64LE(this.base, h);
    v.writeUInt32LE(16, h + 8);
    v.writeBigUInt64LE(this.base + 16n, h + 16);
    v.writeBigUInt64LE(1n, h + 24);
    v.writeBigUInt64LE(this.base + 32n, h + 32);
    v.writeBigUInt64LE(24n, h + 40);
    const n = sendmsg(udpHandle(this.s)!.fd!, this.base + BigInt(h), 0);
    assert.equal(n, data.length, 'sendmsg with UDP_SEGMENT took the whole batch');
  }

  close(): void {
    this.s.close();
    koffi.free(this.mem);
  }
}

/** WireGuard transport messages of one flow: type 4, the receiver index, a counter, then random bytes. */
function transport(count: number, size: number, last: number, from: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const b = randomBytes(i === count - 1 ? last : size);
    b.writeUInt32LE(4, 0);
    b.writeUInt32LE(0x5eed1234, 4);
    b.writeBigUInt64LE(BigInt(from + i), 8);
    return b;
  });
}

const key = (b: Buffer): string => b.toString('hex');
const bytes = (bs: Buffer[]): number => bs.reduce((n, b) => n + b.length, 0);

/**
 * Everything sent has arrived: one delivery per datagram (less the kernel's drops), or as many bytes as were sent
 * (a merged read delivered as one datagram: the assertions then name it rather than waiting out the deadline).
 */
const arrived = (got: Buffer[], sent: Buffer[]): boolean => got.length + kernelDrops(boundPort) >= sent.length || bytes(got) >= bytes(sent);

/** Sends `batches` GSO batches (20 × 1452 bytes, the last 500) and waits until all arrived; returns what was sent. */
async function sendBatches(sender: (segs: Buffer[]) => void, got: Buffer[], batches: number, pause?: (i: number) => Promise<void>): Promise<Buffer[]> {
  const sent: Buffer[] = [];
  for (let i = 0; i < batches; i++) {
    const segs = transport(20, 1452, 500, sent.length);
    sent.push(...segs);
    sender(segs);
    await pause?.(i);
  }
  await until(() => arrived(got, sent));
  return sent;
}

/** The port the scenario's bind listens on: the kernel's drop count for it is read from /proc/net/udp{,6}. */
let boundPort = 0;

/** Datagrams the kernel dropped at the bind's sockets (a full receive buffer on a loaded machine): the last column. */
function kernelDrops(port: number): number {
  let drops = 0;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 13) continue;
      if (Number.parseInt(cols[1]!.split(':')[1]!, 16) === port) drops += Number(cols[cols.length - 1]);
    }
  }
  return drops;
}

/**
 * Every datagram delivered intact, with its own size, in order, and none missing but those the kernel itself
 * dropped before the reader saw them (counted per socket): a loaded machine can overflow the receive buffer.
 */
function assertIntactInOrder(got: Buffer[], sent: Buffer[]): void {
  const longest = sent.reduce((n, b) => Math.max(n, b.length), 0);
  assert.equal(got.filter((b) => b.length > longest).length, 0, 'deliveries longer than any datagram sent: merged reads delivered whole');
  const dropped = kernelDrops(boundPort);
  assert.equal(got.length, sent.length - dropped, `one delivery per datagram sent (the kernel dropped ${dropped})`);
  let j = 0;
  for (const b of got) {
    while (j < sent.length && key(sent[j]!) !== key(b)) j++;
    assert.ok(j < sent.length, 'every datagram intact, with its own size, and in order');
    j++;
  }
}

/** Runs `body` with a UdpBind under `env` and a GSO sender aimed at it. */
async function scenario(
  env: Record<string, string>,
  body: (bind: UdpBind, send: (segs: Buffer[]) => void, got: Buffer[]) => Promise<void>,
  opts: UdpBindOptions = {},
): Promise<void> {
  const saved = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  const bind = new UdpBind(undefined, opts);
  const got: Buffer[] = [];
  const sender = new GsoSender();
  try {
    const port = await bind.open(0, (b) => got.push(Buffer.from(b)));
    boundPort = port;
    await sender.open();
    await body(bind, (segs) => sender.send(port, segs), got);
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    sender.close();
    await bind.close();
  }
}

test('the reader thread reads GSO batches merged (UDP_GRO) and splits them: every datagram intact, in order', async () => {
  await scenario({ MESHCTL_READER_MODE: 'thread' }, async (bind, send, got) => {
    await until(() => (bind.readerStats?.threadStarts ?? 0) > 0);
    // the thread turns UDP_GRO on when it takes its first turn: send until reads come merged
    const sent: Buffer[] = [];
    const deadline = Date.now() + 10_000;
    while ((bind.readerStats?.groReads ?? 0) < 5 && Date.now() < deadline) {
      const segs = transport(20, 1452, 500, sent.length);
      sent.push(...segs);
      send(segs);
      await until(() => arrived(got, sent));
    }
    await until(() => arrived(got, sent));
    const s = bind.readerStats!;
    assert.ok(s.groReads >= 5, `reads came merged with their segment size (${JSON.stringify(s)})`);
    assert.ok(s.groDatagrams / s.groReads > 1, `datagrams per merged read ${s.groDatagrams / s.groReads}`);
    assertIntactInOrder(got, sent);
  });
});

test('MESHCTL_UDP_GRO=0: the thread never reads merged, and the kernel segments the same batches', async () => {
  await scenario({ MESHCTL_READER_MODE: 'thread', MESHCTL_UDP_GRO: '0' }, async (bind, send, got) => {
    await until(() => (bind.readerStats?.threadStarts ?? 0) > 0);
    await new Promise((r) => setTimeout(r, 200)); // the thread up and reading
    const sent = await sendBatches(send, got, 10);
    assert.equal(bind.readerStats!.groReads, 0);
    assert.equal(bind.readerStats!.gro, false);
    assertIntactInOrder(got, sent);
  });
});

test('the event loop (quiet mode) reads GSO batches segmented by the kernel: UDP_GRO stays off', async () => {
  await scenario({ MESHCTL_READER_MODE: 'main' }, async (bind, send, got) => {
    const sent = await sendBatches(send, got, 10, () => new Promise((r) => setTimeout(r, 5)));
    assert.equal(bind.readerStats!.groMainSplits, 0, 'nothing came merged');
    assertIntactInOrder(got, sent);
  });
});

test('reads the event loop finds merged (UDP_GRO left on) are split by their headers: transport, handshake and probe messages', async () => {
  await scenario({ MESHCTL_READER_MODE: 'main' }, async (bind, send, got) => {
    // as when datagrams were queued while the thread had UDP_GRO on
    const fd = udpHandle((bind as unknown as { v4: dgram.Socket }).v4)!.fd!;
    const one = Buffer.alloc(4);
    one.writeInt32LE(1);
    assert.equal(setsockopt(fd, SOL_UDP, UDP_GRO, one, 4), 0);
    const sent: Buffer[] = [];
    const push = async (segs: Buffer[]): Promise<void> => {
      sent.push(...segs);
      send(segs);
      await until(() => arrived(got, sent));
    };
    await push(transport(20, 1452, 500, 0));
    await push(transport(30, 96, 96, 100)); // small ones: inner TCP ACKs
    await push(transport(5, 1452, 32, 200)); // a keepalive last
    const inits = Array.from({ length: 3 }, () => Buffer.concat([Buffer.from([1, 0, 0, 0]), randomBytes(144)]));
    await push(inits); // handshake initiations: each a new sender index, one fixed size
    const probe = Buffer.from('meshctl-probe');
    const probes = Array.from({ length: 4 }, () => Buffer.concat([probe.subarray(0, 8), randomBytes(52)])); // one sender's same-size messages
    await push(probes);
    const s = bind.readerStats!;
    assert.equal(s.groMainSplits, 5, `every merged read split (${JSON.stringify(s)})`);
    assert.equal(s.groMainDatagrams, sent.length);
    assert.equal(s.groSplitFailures, 0);
    assertIntactInOrder(got, sent);
  });
});

test('bursts and quiet spells in turn (auto mode: hand-overs both ways, UDP_GRO toggled): every datagram intact, in order', async () => {
  await scenario({ MESHCTL_READER_MODE: 'auto' }, async (bind, send, got) => {
    const sent: Buffer[] = [];
    // at least 4 rounds, and more (up to a deadline, for a loaded machine) until reading went to the thread, came back and went again
    const deadline = Date.now() + 30_000;
    for (let round = 0; round < 4 || ((bind.readerStats?.handovers ?? 0) < 2 && Date.now() < deadline); round++) {
      // a burst: 40 batches of 20 in quick succession hands reading to the thread ...
      for (let i = 0; i < 40; i++) {
        const segs = transport(20, 1452, 500, sent.length);
        sent.push(...segs);
        send(segs);
        if (i % 8 === 7) await new Promise((r) => setImmediate(r));
      }
      await until(() => arrived(got, sent));
      // ... a trickle below 32 per 250 ms hands it back
      for (let i = 0; i < 6; i++) {
        const segs = transport(3, 1452, 700, sent.length);
        sent.push(...segs);
        send(segs);
        await new Promise((r) => setTimeout(r, 100));
      }
      await until(() => arrived(got, sent));
    }
    const s = bind.readerStats!;
    process.stderr.write(`# auto mode: ${JSON.stringify(s)}\n`);
    assert.ok(s.handovers >= 2, 'the thread read some of it, handed back, and took over again');
    assert.equal(s.groSplitFailures, 0);
    assertIntactInOrder(got, sent);
  });
});

test('a hand-back while batches are queued merged: the thread reads them with their segment size, none reaches libuv whole', async () => {
  // the thread hands back at the end of every window (threshold Infinity), so the moment is the test's to choose
  await scenario(
    { MESHCTL_READER_MODE: 'auto' },
    async (bind, send, got) => {
      const sent: Buffer[] = [];
      const push = (count: number): void => {
        for (let i = 0; i < count; i++) {
          const segs = transport(20, 1452, 500, sent.length);
          sent.push(...segs);
          send(segs);
        }
      };
      // bursts until the event loop hands reading to the thread (the first one starts it)
      const deadline = Date.now() + 20_000;
      while (bind.readerStats!.handovers === 0 && Date.now() < deadline) {
        for (let i = 0; i < 40 && bind.readerStats!.handovers === 0; i++) {
          push(1);
          if (i % 8 === 7) await new Promise((r) => setImmediate(r));
        }
        await until(() => got.length + kernelDrops(boundPort) >= sent.length || bind.readerStats!.handovers > 0, 2000);
      }
      assert.ok(bind.readerStats!.handovers > 0, `the thread took over (${JSON.stringify(bind.readerStats)})`);
      // the thread reads with UDP_GRO on; with the event loop busy, more than the ring holds fills it and stops the
      // thread in the middle of a read, past the end of its window; batches sent then stay queued, merged, until the
      // thread, freed, hands back and drains them
      const before = bind.readerStats!.groReads;
      const ring = (bind as unknown as { reader: { consumer: { ctl: Int32Array; data: Uint8Array } } }).reader.consumer;
      // the published head less the consumer's tail (ctl slots 0 and 1): within a record of the ring's size, the thread waits
      const full = (): boolean => (Atomics.load(ring.ctl, 0) - Atomics.load(ring.ctl, 1)) >>> 0 > ring.data.length - 2048;
      const t0 = Date.now();
      push(30);
      while (!(full() && Date.now() - t0 > 400) && Date.now() - t0 < 5000) {} // the event loop held: nothing consumed
      assert.ok(full(), 'the thread filled the ring and waits for room');
      push(10);
      await until(() => arrived(got, sent));
      const s = bind.readerStats!;
      assertIntactInOrder(got, sent);
      assert.ok(s.groReads > before, `the thread read merged batches (${JSON.stringify(s)})`);
    },
    { readerQuietPackets: Number.POSITIVE_INFINITY },
  );
});

test('splitMerged: one datagram stays whole; inconsistent segments fail and are counted by the caller', () => {
  const none = (): void => assert.fail('no segment expected');
  const single = transport(1, 1452, 1452, 0)[0]!;
  assert.equal(splitMerged(single, none), SPLIT_SINGLE);
  assert.equal(splitMerged(Buffer.from([1, 0, 0, 0, ...randomBytes(144)]), none), SPLIT_SINGLE, 'one initiation');
  assert.equal(splitMerged(randomBytes(300), none), SPLIT_SINGLE, 'no repeated header');
  // the header repeats at 200 but not at 400: not one size
  const bad = Buffer.concat(transport(3, 200, 200, 0));
  bad.fill(0xee, 400, 408);
  assert.equal(splitMerged(bad, none), SPLIT_FAILED);
  // the last segment longer than the size found: not one size
  const tooLong = Buffer.concat([...transport(2, 200, 200, 0), randomBytes(20)]);
  assert.equal(splitMerged(tooLong, none), SPLIT_FAILED);
  const parts: Buffer[] = [];
  const segs = transport(7, 160, 48, 0);
  assert.equal(
    splitMerged(Buffer.concat(segs), (b) => parts.push(b)),
    SPLIT_DONE,
  );
  assert.deepEqual(parts.map(key), segs.map(key));
});
