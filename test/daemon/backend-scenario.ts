// Run by backend-map.test.ts inside a network namespace of its own (the
// daemon's Backend makes a TUN device and puts addresses on it): a Backend
// joins a stand-in control server that then sends a good map, a bad one and
// a second good one; a second Backend gets a bad register answer. Prints what
// it saw as one JSON object on stdout.
import { Backend } from '../../src/daemon/backend.js';
import type { NetworkMap, NodeView, RegisterResult } from '../../src/netmap/types.js';
import { execFileSync } from 'node:child_process';
import { fakeControl } from './fake-control.js';
import { testNodeView } from './node-view.js';

const view = (id: number, o: Partial<NodeView> = {}): NodeView => testNodeView(id, { endpoints: [], version: '1', ...o });

async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

async function main(stateDir: string): Promise<void> {
  const self = view(1, { addresses: ['100.64.0.1', 'FD7A:115C:A1E0:0:0:0:0:1'], tags: ['tag:server'] });
  const result: RegisterResult = { node: self, ipv4Prefix: '100.64.0.0/10', ipv6Prefix: 'fd7a:115c:a1e0::/48' };
  const good: NetworkMap = { self, peers: [view(2, { user: 'alice' })], ipv4Prefix: '100.64.0.0/10', ipv6Prefix: 'fd7a:115c:a1e0::/48', relays: [] };
  const ctl = await fakeControl({ register: () => result });
  const logs: string[] = [];
  const out: Record<string, unknown> = {};
  const b = new Backend({ stateDir: `${stateDir}/a`, defaults: { ifname: 'mt0', port: 0 }, version: 't', logger: (m) => logs.push(m) });
  try {
    ctl.nextStream().then((res) => res.write(JSON.stringify({ type: 'map', map: good }) + '\n'));
    await b.up({ loginServer: ctl.url, controlCaPem: ctl.certPem, timeoutMs: 10_000 }, () => {});
    out.afterGood = b.status().peers.map((p) => p.name);
    // owner and tags as control sent them, in status and whois
    const st = b.status();
    out.owners = [st.self?.user ?? null, st.self?.tags ?? null, st.peers[0]?.user ?? null, st.peers[0]?.tags ?? null];
    const w = b.whois(st.peers[0]!.ips[0]!);
    out.whoisOwner = [w.user ?? null, w.tags ?? null];
    const res = ctl.streams.at(-1)!;
    const bad = { ...good, peers: [view(2), view(3), view(4), view(5, { addresses: ['100.64.0.5', 'evil; ip link del mt0'] })] };
    res.write(JSON.stringify({ type: 'map', map: bad }) + '\n');
    out.refusedLogged = await until(() => logs.some((l) => l.startsWith('map from control refused')));
    out.afterBad = b.status().peers.map((p) => p.name);
    out.stateAfterBad = b.status().backendState;
    res.write(JSON.stringify({ type: 'map', map: { ...good, peers: [view(2), view(3)] } }) + '\n');
    out.secondGoodApplied = await until(() => b.status().peers.length === 2);
    // a whole map with a state number, then a delta: the daemon's map follows the delta (live-map.ts)
    res.write(JSON.stringify({ type: 'map', seq: 20, map: { ...good, peers: [view(2), view(3)] } }) + '\n');
    res.write(JSON.stringify({ type: 'delta', delta: { seq: 21, base: 20, peers: [view(4)], patches: [{ id: 3, set: { online: false } }] } }) + '\n');
    out.deltaApplied = await until(() => JSON.stringify(b.status().peers.map((p) => [p.name, p.online])) === '[["node2",true],["node3",false],["node4",true]]');
    // status as text: the same bytes as JSON.stringify of status(), compact and pretty, the second time from its cache
    // (the process's memory figures in the counters move between two calls: every number in them is masked)
    const mask = (t: string): string => t.replace(/("memory":\s*\{[\s\S]*?"idleReleaseAgoMs":[^}]*\})/, (m) => m.replace(/-?\d+(\.\d+)?/g, '0'));
    out.statusText = [0, 1].map(() => [
      mask(b.statusJson(false)) === mask(JSON.stringify(b.status())),
      mask(b.statusJson(true)) === mask(JSON.stringify(b.status(), null, 2)),
    ]);
    out.addresses = execFileSync('ip', ['-o', 'addr', 'show', 'dev', 'mt0'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /inet6? (\S+)/.exec(l)?.[1])
      .filter((a): a is string => a !== undefined && !a.startsWith('fe80:'));
  } finally {
    await b.close();
  }
  // a register answer with a bad address: `up` fails with one line, no interface is left behind
  const ctl2 = await fakeControl({ register: () => ({ ...result, node: view(1, { addresses: ['100.64.0.1\nip route add default dev mt1'] }) }) });
  const b2 = new Backend({ stateDir: `${stateDir}/b`, defaults: { ifname: 'mt1', port: 0 }, version: 't', logger: (m) => logs.push(m) });
  try {
    await b2.up({ loginServer: ctl2.url, controlCaPem: ctl2.certPem, timeoutMs: 10_000 }, () => {});
    out.badRegister = 'accepted';
  } catch (err) {
    out.badRegister = (err as Error).message;
  } finally {
    await b2.close();
  }
  out.mt1Left = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).includes('mt1');
  out.logs = logs.filter((l) => /refused/.test(l));
  await ctl.close();
  await ctl2.close();
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

void main(process.argv[2]!).catch((err: Error) => {
  process.stdout.write(JSON.stringify({ crashed: err.stack ?? err.message }));
  process.exit(1);
});
