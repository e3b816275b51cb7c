// Access control end to end, through real daemons in namespaces: a control
// server with users, tagged and owned auth keys and a policy set with the CLI,
// and five nodes brought up with `meshctl up`: alice's laptop, a NAS
// (tag:nas), a server (tag:server), bob's PC and a node that tries to join with
// a revoked key. Connections are real TCP from one node's namespace to another
// node's mesh address; names are asked of the node's own MagicDNS resolver over
// UDP. The policy lets alice reach the NAS on 22 and the server on every port,
// and nothing reach alice; bob's PC is in nobody's reach and reaches nobody.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Status } from '../../src/localapi/types.js';
import { packageRoot } from '../../src/cli/version.js';
import { rootSkipReason } from '../helpers/root.js';
import { eventually, MeshLab, type MeshNode } from '../helpers/mesh.js';

// outside root it skips loudly (and fails in CI): rootSkipReason says so on stderr
const skip = rootSkipReason();

const FIXTURE = join(packageRoot(), 'dist', 'test', 'integration', 'fixtures', 'tcp-probe.js');
/** The node resolver's IPv4 address (MagicDNS). */
const RESOLVER = '100.100.100.100';
/** How long a connection attempt the policy should refuse is given before it counts as blocked: SYNs are dropped, not refused. */
const BLOCKED_TIMEOUT_MS = 1500;
/** The bound the issue sets on a policy change reaching the nodes, counted from `policy set` returning. */
const POLICY_APPLIED_MS = 1000;

/** The policy in force, with the NAS ports alice may reach; its tests section must pass for `policy set` to take it. */
function policyText(nasPorts: number[], server = true): string {
  const closed = [22, 5432].filter((p) => !nasPorts.includes(p));
  return `{
  // alice's nodes reach the NAS on some ports and the server on all; nothing may open a flow to alice's nodes
  "tagOwners": { "tag:nas": ["alice"], "tag:server": ["alice"] },
  "acls": [
    { "action": "accept", "src": ["alice"], "dst": ["tag:nas:${nasPorts.join(',')}"], "proto": ["tcp", "udp"] },
    ${server ? '{ "action": "accept", "src": ["alice"], "dst": ["tag:server:*"] },' : "// no rule names the server: it is in nobody's map"}
    // bob's nodes reach only each other: bob's one PC is in nobody's map
    { "action": "accept", "src": ["bob"], "dst": ["autogroup:self:*"] },
  ],
  "tests": [
    { "src": "alice", "accept": [${nasPorts.map((p) => `"tag:nas:${p}"`).join(', ')}], "deny": [${closed.map((p) => `"tag:nas:${p}"`).join(', ')}] },
    { "src": "tag:server", "deny": ["alice:22"] },
  ],
}
`;
}

interface ProbeReply {
  id: number;
  ok: boolean;
  greeting?: string;
  error?: string;
  rcode?: string;
  answers?: string[];
}

/** The tcp-probe fixture in a node's namespace: one process, commands over stdin, so each attempt is timed without a process start. */
class Prober {
  private next = 1;
  private readonly waiting = new Map<number, (r: ProbeReply) => void>();
  /** why the prober is gone, once it is: later and pending questions get it as their answer */
  private gone: string | null = null;
  /** per held connection: bytes echoed so far and when the last echo arrived (this process's clock) */
  readonly echoes = new Map<number, { bytes: number; atMs: number }>();
  private readonly ready: Promise<void>;

  constructor(readonly proc: ChildProcess) {
    let said = '';
    proc.stderr!.on('data', (c: Buffer) => (said += c.toString()));
    this.ready = new Promise((resolve, reject) => {
      proc.once('exit', (code) => {
        this.gone = `the prober exited (${code}): ${said}`;
        reject(new Error(this.gone));
        for (const answer of this.waiting.values()) answer({ id: 0, ok: false, error: this.gone });
      });
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        if (line === 'ready') return resolve();
        const m = JSON.parse(line) as ProbeReply & { echo?: number };
        if (m.echo !== undefined) this.echoes.set(m.id, { bytes: m.echo, atMs: Date.now() });
        else this.waiting.get(m.id)?.(m);
      });
    });
    this.ready.catch(() => {});
  }

  static start(n: MeshNode): Prober {
    return new Prober(spawn('ip', ['netns', 'exec', n.ns, process.execPath, FIXTURE, 'probe'], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  async ask(cmd: Record<string, unknown>): Promise<ProbeReply> {
    await this.ready;
    if (this.gone !== null) throw new Error(this.gone);
    const id = this.next++;
    const reply = new Promise<ProbeReply>((resolve) => this.waiting.set(id, resolve));
    this.proc.stdin!.write(`${JSON.stringify({ id, ...cmd })}\n`);
    const r = await reply;
    this.waiting.delete(id);
    return r;
  }

  connect(host: string, port: number, timeoutMs = BLOCKED_TIMEOUT_MS): Promise<ProbeReply> {
    return this.ask({ op: 'connect', host, port, timeoutMs });
  }

  stop(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

async function status(n: MeshNode): Promise<Status> {
  const r = await n.run(['status', '--json']);
  assert.equal(r.code, 0, `status --json on ${n.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

const ipv4 = (s: Status): string => s.self!.ips.find((a) => !a.includes(':'))!;
const ipv6 = (s: Status): string => s.self!.ips.find((a) => a.includes(':'))!;

/** One ICMP echo from `from`'s namespace, waiting a second for the reply. */
async function pings(from: MeshNode, ip: string): Promise<boolean> {
  const { sh } = await import('../helpers/netns.js');
  return (await sh('ip', ['netns', 'exec', from.ns, 'ping', '-c', '1', '-W', '1', ip], 10_000)).code === 0;
}

/** The access filter's counters in `status --json` (null: no policy on that node). */
async function aclCounters(n: MeshNode): Promise<Record<string, number>> {
  const acl = (await status(n)).counters?.acl as Record<string, number> | null | undefined;
  assert.ok(acl, `${n.name} enforces a packet filter: counters.acl is ${JSON.stringify(acl)}`);
  return acl;
}

test('access control through real daemons: ports, tags, revoked keys, hot policy edits, hidden peers', { skip, timeout: 120_000 }, async (t) => {
  const m = new MeshLab();
  const probers: Prober[] = [];
  try {
    await m.build(5);
    await m.startControl();
    const [laptop, nas, server, bobpc, stranger] = m.nodes as [MeshNode, MeshNode, MeshNode, MeshNode, MeshNode];
    const control = async (args: string[]): Promise<string> => {
      const r = await m.meshctl(['control', ...args, '--state-dir', m.controlDir]);
      assert.equal(r.code, 0, `control ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    /** Sets the policy with the CLI; returns when the command started and when it returned (this process's clock). */
    const setPolicy = async (nasPorts: number[], server = true): Promise<{ startedMs: number; returnedMs: number }> => {
      const file = join(m.dir, `policy-${nasPorts.join('-')}-${server}.json`);
      writeFileSync(file, policyText(nasPorts, server));
      const startedMs = Date.now();
      await control(['policy', 'set', file]);
      return { startedMs, returnedMs: Date.now() };
    };
    const key = async (flags: string[]): Promise<{ id: string; key: string }> =>
      JSON.parse(await control(['authkey', 'create', '--reusable', '--json', ...flags])) as { id: string; key: string };

    // each CLI run costs a process start: independent ones run side by side to keep the test short
    await Promise.all([control(['users', 'create', 'alice']), control(['users', 'create', 'bob'])]);
    const [aliceKey, nasKey, serverKey, bobKey] = await Promise.all([
      key(['--user', 'alice']),
      key(['--tags', 'tag:nas']),
      key(['--tags', 'tag:server']),
      key(['--user', 'bob']),
    ]);
    const keys = new Map<MeshNode, string>([
      [laptop, aliceKey.key],
      [nas, nasKey.key],
      [server, serverKey.key],
      [bobpc, bobKey.key],
    ]);
    await setPolicy([22]);
    const names = new Map([
      [laptop, 'laptop'],
      [nas, 'nas'],
      [server, 'server'],
      [bobpc, 'bobpc'],
    ]);
    const ips = new Map<MeshNode, string>();
    const ips6 = new Map<MeshNode, string>();
    await Promise.all(
      [...keys].map(async ([n, k]) => {
        const r = await m.up(n, ['--auth-key', k, '--hostname', names.get(n)!]);
        assert.equal(r.code, 0, `up ${names.get(n)}: ${r.stderr}`);
        const s = await status(n);
        ips.set(n, ipv4(s));
        ips6.set(n, ipv6(s));
      }),
    );
    // services: the NAS on 22 and 5432, the server on 8080, the laptop on 22 (which the server must not reach)
    for (const [n, ports] of [
      [nas, ['22', '5432']],
      [server, ['8080']],
      [laptop, ['22']],
    ] as const) {
      const p = m.lab.spawn(n.ns, [process.execPath, FIXTURE, 'serve', ...ports]);
      let said = '';
      p.stdout!.on('data', (c: Buffer) => (said += c.toString()));
      await eventually(`services on ${names.get(n)}`, async () => said.includes('ready'), 10_000, 20);
    }
    const fromLaptop = Prober.start(laptop);
    const fromServer = Prober.start(server);
    const fromBob = Prober.start(bobpc);
    probers.push(fromLaptop, fromServer, fromBob);
    const nasIp = ips.get(nas)!;

    await t.test("alice's laptop reaches the NAS on TCP 22 but not on 5432, and the NAS counts the drop", async () => {
      // the first connection also waits for the WireGuard handshake
      const ssh = await eventually('laptop → nas:22', async () => (await fromLaptop.connect(nasIp, 22, 2000)).greeting, 15_000, 50);
      assert.equal(ssh, 'open-22');
      const before = (await aclCounters(nas)).droppedNoRule!;
      const pg = await fromLaptop.connect(nasIp, 5432);
      assert.equal(pg.ok, false, `the laptop reached the NAS on 5432: ${JSON.stringify(pg)}`);
      assert.equal(pg.error, 'timeout', 'dropped, not refused');
      const after = (await aclCounters(nas)).droppedNoRule!;
      assert.ok(after > before, `the NAS counted the dropped SYNs under droppedNoRule: ${before} → ${after}`);
      // the same over IPv6, and ICMP follows the rules: the policy allows alice only TCP and UDP to the NAS
      assert.equal((await fromLaptop.connect(ips6.get(nas)!, 22, 2000)).greeting, 'open-22', 'nas:22 over IPv6');
      assert.equal((await fromLaptop.connect(ips6.get(nas)!, 5432)).ok, false, 'nas:5432 over IPv6');
      assert.equal(await pings(laptop, nasIp), false, 'the laptop pinged the NAS');
      // who the laptop sees: the NAS's tags, from control
      const peer = (await status(laptop)).peers.find((p) => p.name === 'nas');
      assert.deepEqual([peer?.user, peer?.tags], [undefined, ['tag:nas']]);
      const whois = await laptop.run(['whois', nasIp]);
      assert.match(whois.stdout, /Tags:\s+tag:nas/, whois.stdout + whois.stderr);
    });

    await t.test('the tagged server cannot open a connection to the laptop, but answers the ones the laptop opens', async () => {
      const laptopIp = ips.get(laptop)!;
      const before = (await aclCounters(laptop)).droppedNoRule!;
      const toLaptop = await fromServer.connect(laptopIp, 22);
      assert.equal(toLaptop.ok, false, `the server opened a connection to the laptop: ${JSON.stringify(toLaptop)}`);
      const after = (await aclCounters(laptop)).droppedNoRule!;
      assert.ok(after > before, `the laptop counted the server's SYNs: ${before} → ${after}`);
      const toServer = await eventually('laptop → server:8080', async () => (await fromLaptop.connect(ips.get(server)!, 8080, 2000)).greeting, 10_000, 50);
      assert.equal(toServer, 'open-8080');
      assert.equal(await pings(laptop, ips.get(server)!), true, 'the laptop pings the server (tag:server:* with every protocol)');
      assert.equal(await pings(server, laptopIp), false, 'the server pinged the laptop');
      assert.equal((await status(laptop)).self?.user, 'alice', "the laptop is alice's");
    });

    await t.test("a peer the policy hides is not in the node's map, status or resolver; a visible one is", async () => {
      const shown = (await status(laptop)).peers.map((p) => p.name).sort();
      assert.deepEqual(shown, ['nas', 'server'], "the laptop's peers");
      assert.deepEqual((await status(bobpc)).peers, [], "bob's PC sees nobody");
      const nasName = await fromLaptop.ask({ op: 'dns', server: RESOLVER, name: 'nas.mesh.internal', type: 'A' });
      assert.deepEqual([nasName.rcode, nasName.answers], ['NOERROR', [nasIp]], JSON.stringify(nasName));
      const hidden = await fromLaptop.ask({ op: 'dns', server: RESOLVER, name: 'bobpc.mesh.internal', type: 'A' });
      assert.equal(hidden.rcode, 'NXDOMAIN', `the laptop's resolver names a hidden peer: ${JSON.stringify(hidden)}`);
      const hiddenReverse = await fromLaptop.ask({ op: 'dns', server: RESOLVER, name: ipv4PtrName(ips.get(bobpc)!), type: 'PTR' });
      assert.equal(hiddenReverse.rcode, 'NXDOMAIN', `the laptop's resolver gives a hidden peer's name by address: ${JSON.stringify(hiddenReverse)}`);
      const fromBobSide = await fromBob.ask({ op: 'dns', server: RESOLVER, name: 'laptop.mesh.internal', type: 'A' });
      assert.equal(fromBobSide.rcode, 'NXDOMAIN', `bob's resolver names the laptop: ${JSON.stringify(fromBobSide)}`);
      // and, hidden or not, the packets do not pass either way
      assert.equal((await fromBob.connect(ips.get(laptop)!, 22)).ok, false, "bob's PC reached the laptop");
    });

    await t.test('a revoked auth key registers no new node; the nodes it registered keep working, across a daemon restart', async () => {
      await control(['authkey', 'revoke', aliceKey.id]);
      const r = await m.up(stranger, ['--auth-key', aliceKey.key, '--hostname', 'stranger']);
      assert.notEqual(r.code, 0, `up with a revoked key succeeded: ${r.stdout}`);
      // progress lines, then the cause as the last line
      const cause = r.stderr.trim().split('\n').pop()!;
      assert.match(cause, /auth key was revoked by an admin: ask for a new one$/, r.stderr);
      assert.doesNotMatch(r.stderr, new RegExp(aliceKey.key), 'the secret is not echoed');
      assert.ok(!(await control(['nodes', 'list', '--json'])).includes('stranger'), 'no node was registered');
      assert.equal((await fromLaptop.connect(nasIp, 22)).greeting, 'open-22', 'the laptop still reaches the NAS');
      // and after its daemon is killed and started again: it logs in with its node key, not the revoked auth key
      const pid = Number(readFileSync(join(laptop.stateDir, 'daemon.pid'), 'utf8'));
      process.kill(pid, 'SIGKILL');
      await eventually('the laptop daemon is gone', async () => (await laptop.run(['status'])).code === 1, 5000);
      const restarted = await laptop.run(['up', '--timeout', '20s']);
      assert.equal(restarted.code, 0, `the laptop's daemon restarts without its (revoked) key: ${restarted.stderr}`);
      const again = await eventually('laptop → nas:22 after a restart', async () => (await fromLaptop.connect(nasIp, 22, 2000)).greeting, 10_000, 50);
      assert.equal(again, 'open-22');
    });

    await t.test('a policy edit takes effect within 1 s of `policy set` returning: new ports open, removed ones close, live flows too', async () => {
      // add 5432: the first connection that gets through, timed from the moment `policy set` returned
      const added = await setPolicy([22, 5432]);
      await eventually('laptop → nas:5432 once allowed', async () => (await fromLaptop.connect(nasIp, 5432, 200)).ok, 5000, 0);
      const openMs = Date.now() - added.returnedMs;
      t.diagnostic(`5432 allowed: first connection through ${openMs} ms after policy set returned (${Date.now() - added.startedMs} ms after it started)`);
      assert.ok(openMs <= POLICY_APPLIED_MS, `5432 opened ${openMs} ms after policy set (limit ${POLICY_APPLIED_MS} ms)`);

      // an established connection on 22 that sends a byte every 50 ms and gets it echoed
      const held = await fromLaptop.ask({ op: 'hold', host: nasIp, port: 22, timeoutMs: 2000 });
      assert.equal(held.greeting, 'open-22', JSON.stringify(held));
      await eventually('echoes on the held connection', async () => (fromLaptop.echoes.get(held.id)?.bytes ?? 0) >= 3, 3000, 20);
      // and a UDP stream the NAS sends to the laptop on a flow the laptop opened to UDP 22
      const stream = await fromLaptop.ask({ op: 'udp', host: nasIp, port: 22, timeoutMs: 2000 });
      assert.equal(stream.ok, true, JSON.stringify(stream));
      await eventually('datagrams of the stream', async () => (fromLaptop.echoes.get(stream.id)?.bytes ?? 0) >= 3, 3000, 20);
      const revokedBefore = (await aclCounters(nas)).flowsRevoked!;

      // remove 22: new connections fail and the held one stops passing data
      const { startedMs, returnedMs: removed } = await setPolicy([5432]);
      let firstRefusedAttemptMs = -1;
      await eventually(
        'a new connection to nas:22 fails',
        async () => {
          const at = Date.now();
          const r = await fromLaptop.connect(nasIp, 22, 300);
          if (!r.ok) firstRefusedAttemptMs = at - removed;
          return !r.ok;
        },
        5000,
        0,
      );
      // silence on the held connection and the stream: nothing for 500 ms (10 intervals); the last arrival is when data stopped passing
      const silent = (id: number) => async () => Date.now() - (fromLaptop.echoes.get(id)?.atMs ?? 0) >= 500;
      await eventually('the held connection goes silent', silent(held.id), 5000, 20);
      await eventually("the NAS's UDP stream to the laptop goes silent", silent(stream.id), 5000, 20);
      const lastEchoMs = fromLaptop.echoes.get(held.id)!.atMs - removed;
      const lastDatagramMs = fromLaptop.echoes.get(stream.id)!.atMs - removed;
      t.diagnostic(
        `22 removed: first refused new connection started ${firstRefusedAttemptMs} ms, last echo on the held TCP connection ${lastEchoMs} ms, ` +
          `last datagram of the UDP stream ${lastDatagramMs} ms after policy set returned (a negative time: before it returned; ` +
          `the command itself took ${removed - startedMs} ms)`,
      );
      assert.ok(lastDatagramMs <= POLICY_APPLIED_MS, `the UDP stream passed data ${lastDatagramMs} ms after policy set`);
      assert.ok(firstRefusedAttemptMs <= POLICY_APPLIED_MS, `new connections to 22 still opened ${firstRefusedAttemptMs} ms after policy set`);
      assert.ok(lastEchoMs <= POLICY_APPLIED_MS, `the established connection passed data ${lastEchoMs} ms after policy set`);
      assert.equal((await fromLaptop.connect(nasIp, 22)).ok, false, 'and 22 stays closed');
      const revokedAfter = (await aclCounters(nas)).flowsRevoked!;
      assert.ok(revokedAfter > revokedBefore, `the NAS counted the cut flow: flowsRevoked ${revokedBefore} → ${revokedAfter}`);
      assert.equal((await fromLaptop.connect(nasIp, 5432)).greeting, 'open-5432', '5432 stays open');
      await fromLaptop.ask({ op: 'close' });
    });

    await t.test('a policy edit that hides a peer takes it out of the map, the resolver and reach; showing it again brings it back', async () => {
      const serverIp = ips.get(server)!;
      const held = await fromLaptop.ask({ op: 'hold', host: serverIp, port: 8080, timeoutMs: 2000 });
      assert.equal(held.greeting, 'open-8080', JSON.stringify(held));
      const resolves = async (): Promise<string | undefined> =>
        (await fromLaptop.ask({ op: 'dns', server: RESOLVER, name: 'server.mesh.internal', type: 'A' })).rcode;
      assert.equal(await resolves(), 'NOERROR');
      const hidden = await setPolicy([5432], false);
      await eventually('the server is no name at the laptop', async () => (await resolves()) === 'NXDOMAIN', 5000, 20);
      const goneMs = Date.now() - hidden.returnedMs;
      await eventually('the held connection to the server goes silent', async () => Date.now() - (fromLaptop.echoes.get(held.id)?.atMs ?? 0) >= 500, 5000, 20);
      const lastEchoMs = fromLaptop.echoes.get(held.id)!.atMs - hidden.returnedMs;
      t.diagnostic(`server hidden: its name gone ${goneMs} ms, last echo on a held connection to it ${lastEchoMs} ms after policy set returned`);
      assert.ok(goneMs <= POLICY_APPLIED_MS, `the laptop's resolver still named the server ${goneMs} ms after policy set`);
      assert.ok(lastEchoMs <= POLICY_APPLIED_MS, `the held connection to the server passed data ${lastEchoMs} ms after policy set`);
      await eventually('the server leaves the laptop’s status', async () => !(await status(laptop)).peers.some((p) => p.name === 'server'), 5000);
      assert.deepEqual(
        (await status(server)).peers.map((p) => p.name),
        [],
        'the server sees nobody',
      );
      assert.equal((await fromLaptop.connect(serverIp, 8080)).ok, false, 'the laptop no longer reaches the server');
      await fromLaptop.ask({ op: 'close' });
      await setPolicy([5432], true);
      await eventually('the server is a name at the laptop again', async () => (await resolves()) === 'NOERROR', 5000, 20);
      const back = await eventually('laptop → server:8080 again', async () => (await fromLaptop.connect(serverIp, 8080, 1000)).greeting, 10_000, 50);
      assert.equal(back, 'open-8080');
    });
  } finally {
    for (const p of probers) p.stop();
    await m.cleanup();
  }
});

/** The reverse-lookup name of an IPv4 address (in-addr.arpa). */
function ipv4PtrName(ip: string): string {
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
}
