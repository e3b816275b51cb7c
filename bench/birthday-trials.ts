// Port prediction in the lab, repeated: each trial builds a fresh lab with an
// easy-NAT node and a hard-NAT node (or two hard ones with --pair hard-hard),
// starts ICMP traffic between them through the tunnel, and times how long the
// easy node takes to see a trusted direct path. Prints successes, time to
// direct (p50, max), and the probe packets and bytes each side spent per
// attempt. With --range-samples N it first measures the ports the hard NAT
// (nftables `masquerade random`) hands out, from N sockets of the hard node.
//   node dist/bench/birthday-trials.js --trials 20 [--pair hard-hard] [--range-samples 4000]
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Lab, tearDown } from '../src/lab/lab.js';
import type { LabNode, NatKind } from '../src/lab/topology.js';
import { packageRoot } from '../src/cli/version.js';
import type { Status } from '../src/localapi/types.js';
import type { BirthdayStats } from '../src/engine/paths/birthday.js';
import { sh } from '../test/helpers/netns.js';

const BIN = join(packageRoot(), 'bin', 'meshctl');
/** a trial that has no direct path after this long counts as a miss */
const TRIAL_LIMIT_MS = 30_000;
/** labs built again for one trial when one fails to come up */
const SETUP_RETRIES = 2;

interface Trial {
  directMs: number | null;
  easy: BirthdayStats | null;
  hard: BirthdayStats | null;
}

async function status(l: Lab, n: LabNode): Promise<Status> {
  const r = await l.meshctl(n, ['status', '--json']);
  if (r.code !== 0) throw new Error(`${n.name}: status: ${r.err}`);
  return JSON.parse(r.out) as Status;
}

const counters = (s: Status): BirthdayStats | null => (s.counters as { birthday?: BirthdayStats } | null)?.birthday ?? null;

/** The hard NAT's public ports for `n` new flows (one socket each) towards the control server's address. */
async function natPorts(l: Lab, hard: LabNode, n: number): Promise<number[]> {
  const ctlIp = '7.0.113.2';
  const listener = `const s = require('node:dgram').createSocket('udp4'); const ports = [];
    s.on('message', (m, r) => { ports.push(r.port); if (ports.length >= ${n}) { process.stdout.write(JSON.stringify(ports)); process.exit(0); } });
    s.bind(9999, '${ctlIp}', () => process.stderr.write('ready\\n')); setTimeout(() => { process.stdout.write(JSON.stringify(ports)); process.exit(0); }, 60000);`;
  const rx = spawn('ip', ['netns', 'exec', l.s.controlNs, process.execPath, '-e', listener], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  rx.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((res) => rx.once('exit', () => res()));
  await new Promise<void>((res, rej) => {
    rx.stderr.on('data', (d: Buffer) => ((err += d.toString()), err.includes('ready') && res()));
    void exited.then(() => rej(new Error(`the port listener exited: ${err.trim()}`)));
  });
  const sender = `const dgram = require('node:dgram'); let open = 0;
    (async () => { for (let i = 0; i < ${n}; i++) { const s = dgram.createSocket('udp4');
      await new Promise((r) => s.bind(0, r)); s.send('x', 9999, '${ctlIp}', () => { s.close(); }); if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20)); } })();`;
  await sh('ip', ['netns', 'exec', hard.ns, process.execPath, '-e', sender], 120_000);
  await exited;
  return JSON.parse(out || '[]') as number[];
}

async function trial(i: number, kinds: NatKind[], rangeSamples: number): Promise<Trial> {
  const name = `bt${(process.pid + i) % 10000}`;
  const l = await Lab.create({ name, kinds, bin: BIN, dir: `/tmp/meshctl-bench-${name}` });
  let pinger: ReturnType<typeof spawn> | null = null;
  try {
    await l.build({ name, kinds: [], bin: BIN });
    await l.startServers();
    const [a, b] = l.s.nodes as [LabNode, LabNode];
    if (rangeSamples > 0) {
      const ports = await natPorts(l, b, rangeSamples);
      const min = Math.min(...ports);
      const max = Math.max(...ports);
      const low = ports.filter((p) => p < 2048).length;
      const distinct = new Set(ports).size;
      process.stdout.write(
        `masquerade random on ${(await sh('uname', ['-r'])).stdout.trim()}: ${ports.length} flows, ports ${min}–${max}, ${distinct} distinct, ` +
          `${low} in 1024–2047 (${((low / ports.length) * 100).toFixed(2)} %; uniform over 1024–65535 would give ${((1024 / 64512) * 100).toFixed(2)} %)\n`,
      );
    }
    await l.upAll();
    const deadline = Date.now() + 20_000;
    while ((await status(l, a)).peers.every((p) => p.path.kind === 'none') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const nc = async (n: LabNode) =>
      (JSON.parse((await l.meshctl(n, ['netcheck', '--json'])).out) as { mappingVariesByDestIP: boolean | null }).mappingVariesByDestIP;
    while (!(await nc(b)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const ipB = (await status(l, b)).self!.ips[0]!;
    const t0 = Date.now();
    pinger = spawn('ip', ['netns', 'exec', a.ns, 'ping', '-i', '0.2', '-W', '1', ipB], { stdio: 'ignore' });
    let directMs: number | null = null;
    while (Date.now() - t0 < TRIAL_LIMIT_MS) {
      const p = (await status(l, a)).peers[0]?.path;
      if (p?.kind === 'direct' && p.trusted) {
        directMs = Date.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return { directMs, easy: counters(await status(l, a)), hard: counters(await status(l, b)) };
  } finally {
    pinger?.kill('SIGKILL');
    await tearDown(l.s);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { trials: { type: 'string', default: '20' }, pair: { type: 'string', default: 'easy-hard' }, 'range-samples': { type: 'string', default: '0' } },
  });
  const trials = Number(values.trials);
  const kinds: NatKind[] = values.pair === 'hard-hard' ? ['hard', 'hard'] : ['easy', 'hard'];
  const results: Trial[] = [];
  for (let i = 0; i < trials; i++) {
    let r: Trial | null = null;
    // a lab that fails to come up (a relay slow to start on a loaded machine) is no trial of port prediction: build another
    for (let setup = 0; r === null; setup++) {
      try {
        r = await trial(i * 10 + setup, kinds, i === 0 && setup === 0 ? Number(values['range-samples']) : 0);
      } catch (err) {
        if (setup >= SETUP_RETRIES) throw err;
        process.stdout.write(`trial ${i + 1}: the lab did not come up (${(err as Error).message}); building it again\n`);
      }
    }
    results.push(r);
    const e = r.easy;
    const h = r.hard;
    process.stdout.write(
      `trial ${i + 1}: ${r.directMs === null ? 'relayed' : `direct in ${r.directMs} ms`}; ` +
        `${kinds[0]} side ${e?.attempts ?? 0} attempts, ${e?.probesSent ?? 0} packets, ${e?.probeBytes ?? 0} B; ` +
        `${kinds[1]} side ${h?.attempts ?? 0} attempts, ${h?.socketsOpened ?? 0} sockets, ${h?.probesSent ?? 0} packets, ${h?.probeBytes ?? 0} B\n`,
    );
  }
  const times = results.flatMap((r) => (r.directMs === null ? [] : [r.directMs])).sort((x, y) => x - y);
  const per = (f: (t: Trial) => number) => {
    const attempts = results.reduce((n, r) => n + Math.max(1, r.easy?.attempts ?? 0), 0);
    return Math.round(results.reduce((n, r) => n + f(r), 0) / attempts);
  };
  process.stdout.write(
    `\n${kinds.join(' ↔ ')}: ${times.length}/${trials} direct within ${TRIAL_LIMIT_MS / 1000} s; ` +
      (times.length ? `time to direct p50 ${times[Math.floor((times.length - 1) / 2)]} ms, max ${times.at(-1)} ms; ` : '') +
      `per attempt: ${kinds[0]} side ${per((r) => r.easy?.probesSent ?? 0)} packets / ${per((r) => r.easy?.probeBytes ?? 0)} B, ` +
      `${kinds[1]} side ${per((r) => r.hard?.probesSent ?? 0)} packets / ${per((r) => r.hard?.probeBytes ?? 0)} B\n`,
  );
}

// a pending timer keeps the process up while labs are torn down, whatever a child does
const keepAlive = setInterval(() => {}, 60_000);
main()
  .then(() => clearInterval(keepAlive))
  .catch((err: Error) => {
    process.stderr.write(`birthday-trials: ${err.message}\n`);
    process.exit(1);
  });
