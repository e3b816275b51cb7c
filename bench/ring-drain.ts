// The event loop's side of a reader ring (src/util/shm-ring.ts), copying against in place: a producer thread writes
// batches of 45 records of 1,420 B (one TUN super-packet's segments) as fast as the ring takes them, and the event
// loop consumes them, copying each record once into warm memory as the device does (the seal's copy into its send
// slot, the open's into the memory it decrypts in); the copying consumer has copied the batch out first. Printed: the
// consumer's CPU time (this thread's, from /proc) per record, and the records per second, alternating rounds.
// usage: node dist/bench/ring-drain.js [--records N] [--rounds R]
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { createRing, RingConsumer, type RingBuffers } from '../src/util/shm-ring.js';
import { median } from './procstat.js';

const RING_BYTES = 512 * 1024;
const RECORD_BYTES = 1420;
const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const RECORDS = opt('--records', 200_000);
const scratch = Buffer.allocUnsafeSlow(2048);
const ROUNDS = opt('--rounds', 5);

/** user + system CPU seconds of the calling thread (the event loop) */
function threadCpuSeconds(): number {
  const st = readFileSync('/proc/thread-self/stat', 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function round(inPlace: boolean): Promise<{ usPerRecord: number; perSecond: number }> {
  const ring: RingBuffers = createRing(RING_BYTES);
  let seen = 0;
  let sink = 0;
  const t0 = process.hrtime.bigint();
  const c0 = threadCpuSeconds();
  const done = new Promise<void>((resolve) => {
    const finish = (): void => {
      if (seen >= RECORDS) {
        c.stop();
        resolve();
      }
    };
    const c = inPlace
      ? RingConsumer.inPlace(ring, {
          record: (data, off, len) => {
            scratch.set(data.subarray(off, off + len));
            sink += scratch[len - 1]!;
            seen++;
          },
          end: finish,
        })
      : new RingConsumer(ring, (bytes, offsets, lengths) => {
          for (let i = 0; i < offsets.length; i++) {
            scratch.set(bytes.subarray(offsets[i]!, offsets[i]! + lengths[i]!));
            sink += scratch[lengths[i]! - 1]!;
          }
          seen += offsets.length;
          finish();
        });
    c.start();
  });
  const w = new Worker(new URL('./ring-drain-producer.js', import.meta.url), { workerData: { ring, records: RECORDS, bytes: RECORD_BYTES } });
  await done;
  const cpu = threadCpuSeconds() - c0;
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  await w.terminate();
  if (sink < 0) console.log(sink);
  return { usPerRecord: (cpu * 1e6) / seen, perSecond: seen / wall };
}

const results = { copy: [] as number[], inPlace: [] as number[], copyRate: [] as number[], inPlaceRate: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  for (const inPlace of r % 2 === 0 ? [false, true] : [true, false]) {
    const x = await round(inPlace);
    (inPlace ? results.inPlace : results.copy).push(x.usPerRecord);
    (inPlace ? results.inPlaceRate : results.copyRate).push(x.perSecond);
  }
}
const f = (xs: number[], d = 3): string => `${median(xs).toFixed(d)} [${xs.map((x) => x.toFixed(d)).join(' ')}]`;
console.log(`consumer CPU per record of ${RECORD_BYTES} B, µs: copy ${f(results.copy)}; in place ${f(results.inPlace)}`);
console.log(`records per second: copy ${f(results.copyRate, 0)}; in place ${f(results.inPlaceRate, 0)}`);
