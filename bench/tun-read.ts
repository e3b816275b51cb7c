// How fast can Node read a TUN device without blocking its event loop?
// Compares (a) fs.read through libuv's threadpool with 4 reads in flight,
// (b) the reader thread handing over every packet alone, (c) the reader thread
// handing over batches of up to 64. Run as root: `node dist/bench/tun-read.js`.
// Traffic: 1,400-byte UDP datagrams from a generator process, routed into the TUN,
// all inside a namespace this benchmark creates and deletes.
import { read } from 'node:fs';
import { Lab } from '../test/helpers/netns.js';
import { openTun, type TunDevice } from '../src/tun/device.js';
import { addAddressesAndRoutes, setLinkUp } from '../src/tun/netconf.js';
import { parsePrefix } from '../src/util/netaddr.js';

const MEASURE_MS = 4000;
const DATAGRAM_BYTES = 1400;

async function inner(mode: string): Promise<void> {
  const name = `mcbt${process.pid % 10000}`;
  const batch = mode === 'worker-single' ? 1 : 64;
  const tun: TunDevice = await openTun({ name, mtu: 1500, batchPackets: batch });
  await setLinkUp(name, 1500);
  await addAddressesAndRoutes(name, [parsePrefix('10.81.0.1/24')], [parsePrefix('10.82.0.0/24')]);
  let packets = 0;
  if (mode === 'threadpool') {
    const fd = (tun as unknown as { fd: number }).fd;
    const buf = Array.from({ length: 4 }, () => Buffer.alloc(2048));
    let running = true;
    const loop = (b: Buffer): void => {
      if (!running) return;
      read(fd, b, 0, b.length, null, (err, n) => {
        if (!err && n > 0) packets++;
        setImmediate(() => loop(b));
      });
    };
    buf.forEach(loop);
    await new Promise((r) => setTimeout(r, MEASURE_MS));
    running = false;
  } else {
    tun.onPackets((p) => (packets += p.length));
    await new Promise((r) => setTimeout(r, MEASURE_MS));
  }
  const pps = packets / (MEASURE_MS / 1000);
  process.stdout.write(JSON.stringify({ mode, pps, mbps: (pps * DATAGRAM_BYTES * 8) / 1e6, batches: tun.stats.rxBatches }) + '\n');
  await tun.close();
  process.exit(0);
}

async function outer(): Promise<void> {
  const gen = `const d=require('dgram');const s=d.createSocket('udp4');const b=Buffer.alloc(${DATAGRAM_BYTES});let i=0;
    const end=Date.now()+${MEASURE_MS + 1500};function go(){for(let k=0;k<64;k++)s.send(b,9,'10.82.0.'+(1+(i++%200)));if(Date.now()<end)setImmediate(go);else s.close();}go();`;
  console.log('mode'.padEnd(16), 'packets/s'.padStart(10), 'Mbit/s'.padStart(8));
  for (const mode of ['threadpool', 'worker-single', 'worker-batch']) {
    const lab = new Lab();
    try {
      const ns = await lab.netns('r');
      const reader = lab.spawn(ns, [process.execPath, process.argv[1]!, '--inner', mode]);
      let out = '';
      reader.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((r) => setTimeout(r, 700));
      lab.spawn(ns, [process.execPath, '-e', gen]);
      await new Promise<void>((r) => reader.once('exit', () => r()));
      const res = JSON.parse(out.trim()) as { pps: number; mbps: number };
      console.log(mode.padEnd(16), res.pps.toFixed(0).padStart(10), res.mbps.toFixed(0).padStart(8));
    } finally {
      await lab.cleanup();
    }
  }
}

const i = process.argv.indexOf('--inner');
if (i >= 0) void inner(process.argv[i + 1]!);
else void outer();
