// When reading moves between the event loop and the reader thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MainReading, MODE_MAIN, MODE_SLOT, MODE_THREAD, QUIET_WINDOW_MS, RETIRE_SLOT, ThreadReading } from '../../src/util/reader-mode.js';

const ctlOf = (): Int32Array => new Int32Array(new SharedArrayBuffer(64));

/** The retire request follows a quiet spell on a timer: polled with a deadline, not a fixed sleep. */
async function untilRetireAsked(ctl: Int32Array, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Atomics.load(ctl, RETIRE_SLOT) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

test('the event loop hands reading to the thread on a burst, not on a trickle', async () => {
  const ctl = ctlOf();
  const calls: string[] = [];
  const m = new MainReading(
    ctl,
    'auto',
    () => calls.push('pause'),
    () => calls.push('resume'),
    () => (calls.push('start'), true),
  );
  m.begin();
  assert.deepEqual(calls, ['resume'], 'no thread until it is needed');
  for (let i = 0; i < 200; i++) {
    m.read(1);
    if (i % 50 === 0) await new Promise((r) => setTimeout(r, 30)); // 50 packets per 30 ms never fills a window
  }
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_MAIN, 'a trickle stays on the event loop');
  for (let i = 0; i < 200; i++) m.read(1);
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_MAIN, 'the event loop reads on while the new thread starts');
  assert.deepEqual(calls, ['resume', 'start']);
  new ThreadReading(ctl, 'auto'); // the thread is up
  for (let i = 0; i < 200; i++) m.read(1);
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_THREAD);
  assert.equal(m.handovers, 1);
  assert.deepEqual(calls, ['resume', 'start', 'pause']);
  m.handedBack();
  assert.deepEqual(calls, ['resume', 'start', 'pause', 'resume']);
  m.threadExited(1);
  for (let i = 0; i < 200; i++) m.read(1);
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_MAIN, 'after the thread failed the event loop keeps reading');
  assert.deepEqual(calls, ['resume', 'start', 'pause', 'resume', 'resume'], 'and never starts another');
});

test('a thread that cannot start leaves reading on the event loop', () => {
  const ctl = ctlOf();
  const m = new MainReading(
    ctl,
    'auto',
    () => assert.fail('paused'),
    () => {},
    () => false,
  );
  m.begin();
  for (let i = 0; i < 500; i++) m.read(1);
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_MAIN);
  assert.equal(m.threadStarts, 0);
});

test('pinned policies: "main" never hands over, "thread" hands over at once', () => {
  const ctl = ctlOf();
  const main = new MainReading(
    ctl,
    'main',
    () => assert.fail('paused'),
    () => {},
    () => assert.fail('started'),
  );
  main.begin();
  for (let i = 0; i < 1000; i++) main.read(1);
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_MAIN);
  const ctl2 = ctlOf();
  new MainReading(
    ctl2,
    'thread',
    () => {},
    () => assert.fail('resumed'),
    () => true,
  ).begin();
  assert.equal(Atomics.load(ctl2, MODE_SLOT), MODE_THREAD);
});

test('the thread waits for its turn, keeps it while busy and hands back when quiet', async () => {
  const ctl = ctlOf();
  const t = new ThreadReading(ctl, 'auto');
  assert.equal(t.awaitTurn(5), false, 'the event loop reads first');
  Atomics.store(ctl, MODE_SLOT, MODE_THREAD);
  assert.equal(t.awaitTurn(5), true);
  await new Promise((r) => setTimeout(r, QUIET_WINDOW_MS + 20));
  assert.equal(t.read(1000), false, 'a busy window keeps the thread reading');
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_THREAD);
  await new Promise((r) => setTimeout(r, QUIET_WINDOW_MS + 20));
  assert.equal(t.read(0), true, 'a quiet window hands back');
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_MAIN);
  const pinned = new ThreadReading(ctl, 'thread');
  Atomics.store(ctl, MODE_SLOT, MODE_THREAD);
  assert.equal(pinned.awaitTurn(5), true);
  await new Promise((r) => setTimeout(r, QUIET_WINDOW_MS + 20));
  assert.equal(pinned.read(0), false, '"thread" never hands back');
});

test('an idle thread is retired and a later burst starts a new one', async () => {
  const ctl = ctlOf();
  let starts = 0;
  const m = new MainReading(
    ctl,
    'auto',
    () => {},
    () => {},
    () => (starts++, true),
    30,
  );
  m.begin();
  const burst = (): void => {
    for (let i = 0; i < 200; i++) m.read(1);
  };
  burst();
  const t = new ThreadReading(ctl, 'auto');
  burst();
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_THREAD);
  Atomics.store(ctl, MODE_SLOT, MODE_MAIN); // the thread handed back
  m.handedBack();
  assert.equal(t.retired, false);
  await untilRetireAsked(ctl);
  assert.equal(Atomics.load(ctl, RETIRE_SLOT), 1, 'asked to retire after a quiet spell');
  assert.equal(t.retired, true);
  burst();
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_MAIN, 'a retiring thread is handed nothing');
  assert.equal(m.threadRunning, true);
  m.threadExited(0);
  assert.equal(m.threadRunning, false);
  assert.equal(Atomics.load(ctl, RETIRE_SLOT), 0);
  burst();
  assert.equal(starts, 2, 'the next burst starts a new thread');
  assert.equal(m.threadStarts, 2, 'and the counter shows it');
  new ThreadReading(ctl, 'auto');
  burst();
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_THREAD);
});

test('a thread started for a burst that ended before it was up retires too', async () => {
  const ctl = ctlOf();
  const m = new MainReading(
    ctl,
    'auto',
    () => {},
    () => {},
    () => true,
    30,
  );
  m.begin();
  for (let i = 0; i < 200; i++) m.read(1); // starts the thread; it is not ready yet, so no hand-over
  assert.equal(m.threadRunning, true);
  assert.equal(Atomics.load(ctl, MODE_SLOT), MODE_MAIN);
  await untilRetireAsked(ctl);
  assert.equal(Atomics.load(ctl, RETIRE_SLOT), 1);
});
