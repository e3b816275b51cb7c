// The fault suite's lab: src/lab's namespaces (an internet bridge, control,
// two relay regions, nodes behind NAT routers), a paced TCP stream between two
// nodes with its progress, and the faults themselves as functions: a NAT's
// conntrack flushed, its public port or address changed, a node moved to
// another site, a daemon killed, a host losing packets, a process stopped.
// bench/faults.ts (`npm run faults`) and test/integration/faults-*.test.ts use it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Lab, tearDown } from '../../src/lab/lab.js';
import { INET_PREFIX, type LabNode, type NatKind } from '../../src/lab/topology.js';
import type { Status } from '../../src/localapi/types.js';
import { packageRoot } from '../../src/cli/version.js';
import type { StreamProgress, StreamResult } from './stream.js';

export const BIN = join(packageRoot(), 'bin', 'meshctl');
const STREAM = join(packageRoot(), 'dist', 'bench', 'faults', 'stream.js');
/** The stream's TCP port on the receiving node. */
const STREAM_PORT = 5302;

export interface CmdResult {
  code: number;
  out: string;
  err: string;
}

export function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<CmdResult> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? 1, out, err });
    });
  });
}

export async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.err.trim() || `exit ${r.code}`}`);
  return r.out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every `everyMs` until it is true; the ms it took, or null after `timeoutMs`. */
export async function within(fn: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<number | null> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    try {
      if (await fn()) return Date.now() - t0;
    } catch {
      /* not yet */
    }
    await sleep(everyMs);
  }
  return null;
}

export class FaultLab {
  private extra = 0;
  constructor(readonly l: Lab) {}

  /** A lab with nodes of `kinds`, control and both relays running, every node up. */
  /** `beforeUp`: runs once the namespaces and servers are there, before the nodes come up (a small disk under a state dir). */
  static async start(kinds: NatKind[], beforeUp?: (f: FaultLab) => Promise<void>): Promise<FaultLab> {
    const name = `f${randomBytes(4).readUInt32BE(0).toString(36).padStart(7, '0').slice(-5)}`;
    const l = await Lab.create({ name, kinds, bin: BIN, dir: `/tmp/meshctl-lab-${name}` });
    const f = new FaultLab(l);
    try {
      await l.build({ name, kinds: [], bin: BIN });
      await l.startServers();
      await beforeUp?.(f);
      await l.upAll();
    } catch (err) {
      await f.close();
      throw err;
    }
    return f;
  }

  get nodes(): LabNode[] {
    return this.l.s.nodes;
  }

  private readonly mounts: string[] = [];

  /** A tmpfs of `size` (e.g. "4m") at the node's state dir: a small disk a test can fill. Unmounted by close(). */
  async smallDisk(n: LabNode, size: string): Promise<string> {
    const dir = join(this.l.s.dir, n.name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    await must('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
    this.mounts.push(dir);
    return dir;
  }

  async close(): Promise<void> {
    // lazily: the daemon still has files open there until tearDown kills it, and tearDown removes the dir
    for (const m of this.mounts.splice(0)) await run('umount', ['-l', m]);
    await tearDown(this.l.s);
  }

  async status(n: LabNode): Promise<Status> {
    const r = await this.l.meshctl(n, ['status', '--json']);
    if (r.code !== 0) throw new Error(`${n.name}: status: ${r.err.trim()}`);
    return JSON.parse(r.out) as Status;
  }

  async pathTo(from: LabNode, to: LabNode): Promise<string> {
    const p = (await this.status(from)).peers.find((x) => x.name === to.name)?.path;
    if (!p || p.kind === 'none') return 'none';
    return p.kind === 'direct' ? `direct ${p.endpoint}` : `relay ${p.region}`;
  }

  /** Waits until `a` reaches `b` directly (a pong over a direct path); the ms it took or null. */
  untilDirect(a: LabNode, b: LabNode, timeoutMs: number): Promise<number | null> {
    return within(
      async () => /via \d+\.\d+\.\d+\.\d+:\d+ in/.test((await this.l.meshctl(a, ['ping', b.name, '-c', '1', '--timeout', '1s'])).out),
      timeoutMs,
      250,
    );
  }

  /** A command in the namespace `ns`. */
  inNs(ns: string, args: string[]): Promise<string> {
    return must('ip', ['netns', 'exec', ns, ...args]);
  }

  daemonPid(n: LabNode): number {
    return Number(readFileSync(join(this.l.s.dir, n.name, 'daemon.pid'), 'utf8'));
  }

  /** A paced stream from `from` to `to` over the mesh, `rateBps` for `seconds`. */
  async stream(from: LabNode, to: LabNode, rateBps: number, seconds: number): Promise<Stream> {
    const ip = (await this.status(to)).self!.ips[0]!;
    const server = spawn('ip', ['netns', 'exec', to.ns, process.execPath, STREAM, 'server', String(STREAM_PORT)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const s = new Stream(server);
    if ((await within(async () => s.listening || server.exitCode !== null, 10_000, 50)) === null || !s.listening) {
      server.kill('SIGKILL');
      throw new Error(`the stream's server did not start: ${s.err}`);
    }
    s.startClient(
      spawn('ip', ['netns', 'exec', from.ns, process.execPath, STREAM, 'client', ip, String(STREAM_PORT), String(rateBps), String(seconds)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    return s;
  }

  /** ICMP through the tunnel from `from` to `to` every 100 ms, until stopped: the longest gap in replies tells how long the path was down. */
  async icmp(from: LabNode, to: LabNode): Promise<Pinger> {
    const ip = (await this.status(to)).self!.ips[0]!;
    return new Pinger(spawn('ip', ['netns', 'exec', from.ns, 'ping', '-D', '-n', '-i', '0.1', '-W', '1', ip], { stdio: ['ignore', 'pipe', 'ignore'] }));
  }

  /**
   * Waits (up to 60 s) for a direct path both ways between `a` and `b`, then pings through the tunnel both ways: the
   * two flows a fault's cost is read from. Throws when no direct path came.
   */
  async directIcmpBothWays(a: LabNode, b: LabNode): Promise<{ name: string; p: Pinger }[]> {
    const direct = async (): Promise<boolean> => (await this.pathTo(a, b)).startsWith('direct') && (await this.pathTo(b, a)).startsWith('direct');
    if ((await within(direct, 60_000, 250)) === null) throw new Error(`no direct path both ways between ${a.name} and ${b.name}`);
    return [
      { name: `${a.kind}→${b.kind}`, p: await this.icmp(a, b) },
      { name: `${b.kind}→${a.kind}`, p: await this.icmp(b, a) },
    ];
  }

  // --- faults -------------------------------------------------------------

  /**
   * Empties the router's NAT table: its WAN link goes down and up, and the kernel drops every masqueraded
   * conntrack entry of a link that goes down (nf_nat_masquerade), as a router reboot or conntrack -F would.
   */
  async flushConntrack(n: LabNode): Promise<void> {
    await must('ip', ['-n', n.routerNs!, 'link', 'set', 'wan', 'down']);
    await must('ip', ['-n', n.routerNs!, 'link', 'set', 'wan', 'up']);
  }

  /** The router maps to ports 20000-29999 from now on, and forgets its old mappings: a new public port. */
  async changePort(n: LabNode): Promise<void> {
    await this.inNs(n.routerNs!, ['nft', 'flush', 'chain', 'ip', 'meshlab_nat', 'postrouting']);
    const rule = ['oifname', 'wan', 'meta', 'l4proto', '{', 'tcp,', 'udp', '}', 'masquerade', 'to', ':20000-29999'];
    await this.inNs(n.routerNs!, ['nft', 'add', 'rule', 'ip', 'meshlab_nat', 'postrouting', ...rule]);
    await this.inNs(n.routerNs!, ['nft', 'add', 'rule', 'ip', 'meshlab_nat', 'postrouting', 'oifname', 'wan', 'masquerade']);
    await this.flushConntrack(n);
  }

  /** The router's public address changes (a DHCP renew, a PPPoE reconnect): the old one is gone, and with it its mappings. */
  async changeAddress(n: LabNode, last: number): Promise<string> {
    const next = `${INET_PREFIX}.${last}`;
    // deleting a primary address deletes its secondaries too: the old one goes first, then the new one comes
    await must('ip', ['-n', n.routerNs!, 'addr', 'del', `${n.wanIp}/24`, 'dev', 'wan']);
    await must('ip', ['-n', n.routerNs!, 'addr', 'add', `${next}/24`, 'dev', 'wan']);
    await this.flushConntrack(n);
    n.wanIp = next;
    return next;
  }

  /** The node leaves its router's LAN for a new site: another easy NAT with WAN address .`last`, a new LAN and LAN address. */
  async roam(n: LabNode, last: number): Promise<void> {
    const k = ++this.extra;
    const router = `${this.l.s.prefix}x${k}`;
    await must('ip', ['netns', 'add', router]);
    this.l.s.namespaces.push(router);
    const wanIp = `${INET_PREFIX}.${last}`;
    const outer = `${this.l.s.prefix.slice(0, 6)}x${k}`;
    await must('ip', ['-n', router, 'link', 'set', 'lo', 'up']);
    await must('ip', ['link', 'add', outer, 'netns', `${this.l.s.prefix}inet`, 'type', 'veth', 'peer', 'name', 'wan', 'netns', router]);
    await must('ip', ['-n', `${this.l.s.prefix}inet`, 'link', 'set', outer, 'master', 'br0', 'up']);
    await must('ip', ['-n', router, 'addr', 'add', `${wanIp}/24`, 'dev', 'wan']);
    await must('ip', ['-n', router, 'link', 'set', 'wan', 'up']);
    await this.inNs(router, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
    const { natRules } = await import('../../src/lab/topology.js');
    await must('sh', ['-c', `ip netns exec ${router} nft -f - <<'EOF'\n${natRules('easy')}EOF`]);
    // the old site's link goes (both veth ends with it), the new one comes
    await must('ip', ['-n', n.ns, 'link', 'del', 'eth0']);
    const lan = 200 + k;
    await must('ip', ['link', 'add', 'lan', 'netns', router, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', n.ns]);
    await must('ip', ['-n', router, 'addr', 'add', `192.168.${lan}.1/24`, 'dev', 'lan']);
    await must('ip', ['-n', router, 'link', 'set', 'lan', 'up']);
    await must('ip', ['-n', n.ns, 'addr', 'add', `192.168.${lan}.2/24`, 'dev', 'eth1']);
    await must('ip', ['-n', n.ns, 'link', 'set', 'eth1', 'up']);
    await must('ip', ['-n', n.ns, 'route', 'add', 'default', 'via', `192.168.${lan}.1`]);
    n.routerNs = router;
    n.wanIp = wanIp;
    n.lanIp = `192.168.${lan}.2`;
  }

  /** nftables in `ns` drops `percent` % of all packets at random, each way (no netem here); `null` removes it. */
  async loss(ns: string, percent: number | null): Promise<void> {
    if (percent === null) return void (await run('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'meshfault_loss']));
    const rules = `table inet meshfault_loss {\n  chain in {\n    type filter hook input priority -5; policy accept;\n    numgen random mod 100 < ${percent} drop\n  }\n  chain out {\n    type filter hook output priority -5; policy accept;\n    numgen random mod 100 < ${percent} drop\n  }\n}\n`;
    await must('sh', ['-c', `ip netns exec ${ns} nft -f - <<'EOF'\n${rules}EOF`]);
  }
}

/** A running stream: the server's progress lines, then both sides' results. */
export class Stream {
  readonly progress: StreamProgress[] = [];
  listening = false;
  err = '';
  private client: ChildProcess | null = null;
  private clientOut = '';
  private serverResult: StreamResult | null = null;
  private clientResult: StreamResult | null = null;

  constructor(private readonly server: ChildProcess) {
    createInterface({ input: server.stdout! }).on('line', (line) => {
      if (line === 'listening') this.listening = true;
      else if (line.startsWith('{')) {
        const v = JSON.parse(line) as StreamProgress & { done?: boolean; sha256?: string };
        if (v.done) this.serverResult = { bytes: v.bytes, sha256: v.sha256! };
        else this.progress.push(v);
      }
    });
    server.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
  }

  startClient(c: ChildProcess): void {
    this.client = c;
    c.stdout!.on('data', (d: Buffer) => (this.clientOut += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
  }

  /** Bytes the server has seen so far. */
  get bytes(): number {
    return this.progress.at(-1)?.bytes ?? 0;
  }

  /** Resolves once the server's byte count grows past what it is now; the ms that took, or null after `timeoutMs`. */
  flowing(timeoutMs: number): Promise<number | null> {
    const from = this.bytes;
    return within(async () => this.bytes > from, timeoutMs, 50);
  }

  /** The longest span with no new bytes at the server, from `sinceMs` (epoch ms) on. */
  longestStallMs(sinceMs: number): number {
    let worst = 0;
    let lastChange = sinceMs;
    let lastBytes = -1;
    for (const p of this.progress) {
      if (p.t < sinceMs) {
        lastBytes = p.bytes;
        continue;
      }
      if (p.bytes !== lastBytes) {
        worst = Math.max(worst, p.t - lastChange);
        lastChange = p.t;
        lastBytes = p.bytes;
      }
    }
    return Math.max(worst, (this.progress.at(-1)?.t ?? sinceMs) - lastChange);
  }

  /** Mean rate in bits/s at the server between two epoch times. */
  rateBps(fromMs: number, toMs: number): number {
    const inSpan = this.progress.filter((p) => p.t >= fromMs && p.t <= toMs);
    if (inSpan.length < 2) return 0;
    return ((inSpan.at(-1)!.bytes - inSpan[0]!.bytes) * 8 * 1000) / (inSpan.at(-1)!.t - inSpan[0]!.t);
  }

  /** Waits for both sides to finish; checks both exited 0 and saw the same bytes and SHA-256. Throws with what went wrong. */
  async finish(timeoutMs: number): Promise<StreamResult> {
    const exited = (p: ChildProcess) =>
      p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r()));
    const all = Promise.all([exited(this.client!), exited(this.server)]);
    const t = await Promise.race([all.then(() => true), sleep(timeoutMs).then(() => false)]);
    this.kill();
    if (!t) throw new Error(`the stream did not finish within ${timeoutMs} ms (server saw ${this.bytes} bytes): ${this.err.slice(-300)}`);
    const line = this.clientOut.split('\n').find((x) => x.includes('sha256'));
    this.clientResult = line ? (JSON.parse(line) as StreamResult) : null;
    if (this.client!.exitCode !== 0 || !this.clientResult) throw new Error(`the stream's client failed: ${this.err.slice(-300)}`);
    if (this.server.exitCode !== 0 || !this.serverResult) throw new Error(`the stream's server failed: ${this.err.slice(-300)}`);
    if (this.serverResult.bytes !== this.clientResult.bytes || this.serverResult.sha256 !== this.clientResult.sha256)
      throw new Error(`the stream arrived damaged: sent ${this.clientResult.bytes} bytes, received ${this.serverResult.bytes}, SHA-256 differs`);
    return this.serverResult;
  }

  kill(): void {
    for (const p of [this.client, this.server]) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}

/** A running `ping -D`: the epoch ms of each reply. */
export class Pinger {
  readonly replies: number[] = [];

  constructor(private readonly p: ChildProcess) {
    createInterface({ input: p.stdout! }).on('line', (line) => {
      const m = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(line);
      if (m) this.replies.push(Math.round(Number(m[1]) * 1000));
    });
  }

  /** The longest span without a reply between two epoch times (a silence that lasts to `untilMs` counts in full). */
  longestGapMs(sinceMs: number, untilMs: number): number {
    let last = sinceMs;
    let worst = 0;
    for (const t of this.replies) {
      if (t < sinceMs || t > untilMs) continue;
      worst = Math.max(worst, t - last);
      last = t;
    }
    return Math.max(worst, untilMs - last);
  }

  stop(): void {
    if (this.p.exitCode === null && this.p.signalCode === null) this.p.kill('SIGKILL');
  }
}
