// Two facts behind the data plane's design (docs/performance.md, "Who reads"):
// how long a hand-over from a worker thread to the event loop takes
// (postMessage vs Atomics.notify → waitAsync), and how much slower the same
// AEAD seal runs after the CPU sat idle. Run: node dist/bench/wakeup.js
import { Worker } from 'node:worker_threads';
import { packetAead } from '../src/engine/device/aead.js';
import { median, percentile } from './procstat.js';

const SAMPLES = 300;
const INTERVAL_MS = 10;

const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { mode, sab, interval } = workerData;
const i32 = new Int32Array(sab);
const f64 = new Float64Array(sab, 8, 1);
setInterval(() => {
  const t = performance.timeOrigin + performance.now();
  if (mode === 'post') {
    const ab = new ArrayBuffer(1500);
    parentPort.postMessage({ ab, lengths: [1400], t }, [ab]);
  } else {
    f64[0] = t;
    Atomics.add(i32, 0, 1);
    Atomics.notify(i32, 0);
  }
}, interval);`;

type WaitAsync = (a: Int32Array, i: number, v: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
const nowMs = (): number => performance.timeOrigin + performance.now();

function handover(mode: 'post' | 'notify'): Promise<number[]> {
  const sab = new SharedArrayBuffer(16);
  const i32 = new Int32Array(sab);
  const f64 = new Float64Array(sab, 8, 1);
  const w = new Worker(workerSource, { eval: true, workerData: { mode, sab, interval: INTERVAL_MS } });
  const lat: number[] = [];
  return new Promise((resolve) => {
    const done = (): void => void w.terminate().then(() => resolve(lat));
    if (mode === 'post') {
      w.on('message', (m: { t: number }) => {
        lat.push(nowMs() - m.t);
        if (lat.length === SAMPLES) done();
      });
      return;
    }
    let seen = 0;
    const wait = (): void => {
      const r = waitAsync(i32, 0, seen);
      const on = (): void => {
        seen = Atomics.load(i32, 0);
        lat.push(nowMs() - f64[0]!);
        if (lat.length === SAMPLES) done();
        else wait();
      };
      if (r.async) void (r.value as Promise<string>).then(on);
      else on();
    };
    wait();
  });
}

async function coldSeal(idleMs: number): Promise<number[]> {
  const aead = packetAead();
  const key = Buffer.alloc(32, 1);
  const pkt = Buffer.alloc(84, 2);
  const out = Buffer.alloc(200);
  for (let i = 0; i < 20_000; i++) aead.seal(key, i, pkt, 12, out, 16);
  const us: number[] = [];
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, idleMs));
    const t0 = performance.now();
    aead.seal(key, i, pkt, 12, out, 16);
    us.push((performance.now() - t0) * 1000);
  }
  return us;
}

const f = (x: number): string => x.toFixed(3);
for (const mode of ['post', 'notify'] as const) {
  const lat = await handover(mode);
  console.log(
    `${mode === 'post' ? 'postMessage' : 'Atomics.notify → waitAsync'} hand-over to the event loop: median ${f(median(lat))} ms, p90 ${f(percentile(lat, 0.9))} ms (${SAMPLES} samples, one per ${INTERVAL_MS} ms)`,
  );
}
for (const idle of [0, 5, 10, 20, 50]) {
  const us = await coldSeal(idle);
  console.log(
    `AEAD seal of one 84-byte packet after ${String(idle).padStart(2)} ms idle: median ${median(us).toFixed(1)} µs, p90 ${percentile(us, 0.9).toFixed(1)} µs`,
  );
}
