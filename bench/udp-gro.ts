// UDP GRO on receive, measured where it can act: a sender that uses UDP GSO
// (upstream wireguard-go) to a meshctl engine over one veth, the receiver with
// UDP GRO on and with MESHCTL_UDP_GRO=0, in interleaved ABBA pairs. Prints each
// pair's throughput, the receiving engine's CPU seconds per GB and datagrams
// per merged read, and the medians of the per-pair on/off ratios.
// usage: sudo node dist/bench/udp-gro.js [--pairs N] [--seconds S] [--sender PATH]
// (--sender: a wireguard-go binary, default /usr/local/bin/wireguard-go-upstream)
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, must } from '../test/helpers/netns.js';
import { addPeer, startPeer } from '../test/helpers/wg-peer.js';
import { cpuSeconds, median } from './procstat.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const pairs = Number(opt('--pairs', '5'));
const seconds = Number(opt('--seconds', '5'));
const sender = opt('--sender', '/usr/local/bin/wireguard-go-upstream');
const PORT = 51820;

interface Run {
  mbps: number;
  cpuSecPerGb: number;
  perRead: number;
  drops: number;
}

async function run(gro: boolean): Promise<Run> {
  const lab = new Lab();
  try {
    const nsA = await lab.netns('a');
    const nsB = await lab.netns('b');
    await lab.link(nsA, '10.77.0.1/24', nsB, '10.77.0.2/24');
    const a = await startPeer(lab, 'wireguard-go', nsA, { port: PORT, inner4: '10.78.0.1/24', inner6: 'fd78::1/64' });
    const b = await startPeer(lab, 'meshctl', nsB, { port: PORT, inner4: '10.78.0.2/24', inner6: 'fd78::2/64', env: gro ? {} : { MESHCTL_UDP_GRO: '0' } });
    await addPeer(lab, a, b, '10.78.0.2/32', `10.77.0.2:${PORT}`);
    await addPeer(lab, b, a, '10.78.0.1/32', `10.77.0.1:${PORT}`);
    await lab.exec(nsA, ['ping', '-c', '1', '-W', '2', '10.78.0.2']);
    const server = lab.spawn(nsB, ['iperf3', '-s', '-1']);
    await new Promise((r) => setTimeout(r, 300));
    try {
      const c0 = cpuSeconds(b.proc.pid!);
      const out = await must('ip', ['netns', 'exec', nsA, 'iperf3', '-c', '10.78.0.2', '-t', String(seconds), '-J'], (seconds + 30) * 1000);
      const c1 = cpuSeconds(b.proc.pid!);
      const got = (JSON.parse(out) as { end: { sum_received: { bits_per_second: number; bytes: number } } }).end.sum_received;
      const s = await b.stats();
      const r = s.udpReader as { groReads?: number; groDatagrams?: number } | null | undefined;
      return {
        mbps: got.bits_per_second / 1e6,
        cpuSecPerGb: (c1 - c0) / (got.bytes / 1e9),
        perRead: r?.groReads ? r.groDatagrams! / r.groReads : 0,
        drops: (s.dropped.decrypt ?? 0) + (s.dropped.replay ?? 0),
      };
    } finally {
      server.kill('SIGKILL');
    }
  } finally {
    await lab.cleanup();
  }
}

// the test helpers start `wireguard-go` from PATH: put the chosen sender first
const bin = mkdtempSync(join(tmpdir(), 'meshctl-gro-'));
symlinkSync(sender, join(bin, 'wireguard-go'));
process.env.PATH = `${bin}:${process.env.PATH ?? ''}`;
try {
  const on: Run[] = [];
  const off: Run[] = [];
  const f = (x: Run): string => `${x.mbps.toFixed(0)} Mbit/s, ${x.cpuSecPerGb.toFixed(1)} s/GB, ${x.perRead.toFixed(1)} datagrams/read, ${x.drops} drops`;
  for (let i = 0; i < pairs; i++) {
    for (const g of i % 2 === 0 ? [false, true] : [true, false]) (g ? on : off).push(await run(g));
    console.log(`pair ${i + 1}/${pairs}: GRO off ${f(off[i]!)} | GRO on ${f(on[i]!)}`);
  }
  const ratios = (k: 'mbps' | 'cpuSecPerGb'): string => {
    const v = on.map((x, i) => x[k] / off[i]![k]);
    return `${median(v).toFixed(3)} [${v.map((x) => x.toFixed(2)).join(' ')}]`;
  };
  console.log(`median on/off: Mbit/s ${ratios('mbps')}, receiver CPU s/GB ${ratios('cpuSecPerGb')}`);
} finally {
  rmSync(bin, { recursive: true, force: true });
}
