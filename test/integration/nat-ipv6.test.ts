// IPv6 in the lab (`lab up --ipv6`): two sites whose IPv4 is behind hard NATs
// (endpoint-dependent mapping, which stays relayed over IPv4) and whose IPv6
// is routed behind stateful firewalls go direct over IPv6 and carry a TCP
// transfer intact; a third site that may not reach the relays over IPv4 (and
// lets no UDP out) connects to them over IPv6 and is relayed there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { Lab, tearDown } from '../../src/lab/lab.js';
import { RELAYS, type LabNode } from '../../src/lab/topology.js';
import { nodeIp6, RELAY_IP6 } from '../../src/lab/ipv6.js';
import type { NetReport } from '../../src/netmap/netreport.js';
import { packageRoot } from '../../src/cli/version.js';
import { rootSkipReason } from '../helpers/root.js';
import { sh } from '../helpers/netns.js';
import { nodeStatus as status, pathTo } from '../helpers/lab-status.js';
import { labTransfer } from '../helpers/lab-xfer.js';
import type { XferResult } from '../helpers/xfer.js';

const skip = rootSkipReason('nft', 'ss', 'ping');
const BIN = join(packageRoot(), 'bin', 'meshctl');

/** Polls status until `from` has a trusted direct path to `to` over IPv6; the ms from `since`, or null. */
async function untilDirect6(l: Lab, from: LabNode, to: LabNode, since: number, ms = 25_000): Promise<number | null> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const p = await pathTo(l, from, to);
    if (p.kind === 'direct' && p.trusted && p.endpoint.startsWith('[')) return Date.now() - since;
    await new Promise((res) => setTimeout(res, 100));
  }
  return null;
}

const transfer = (l: Lab, from: LabNode, to: LabNode, bytes: number): Promise<XferResult> =>
  labTransfer(l, from, to, bytes, { port: 5302, clientTimeoutMs: 120_000 });

/** On a router: TCP to the relays' IPv4 addresses is answered with a reset, as where IPv4 to them is broken. */
function rejectRelaysOverIpv4(): string {
  const ips = RELAYS.map((r) => r.ip).join(', ');
  return `table ip meshlab_test_v6only {\n  chain forward {\n    type filter hook forward priority -10; policy accept;\n    ip daddr { ${ips} } tcp dport 443 reject with tcp reset\n  }\n}\n`;
}

test('IPv6 in the lab: hard ↔ hard over IPv4 goes direct over IPv6; a relay reached over IPv6 only', { skip, timeout: 150_000 }, async (t) => {
  const name = `s${randomBytes(4).readUInt32BE(0).toString(36).padStart(7, '0').slice(-5)}`;
  const l = await Lab.create({ name, kinds: ['hard', 'hard', 'blocked'], ipv6: true, bin: BIN, dir: `/tmp/meshctl-lab-${name}` });
  try {
    await l.build({ name, kinds: [], bin: BIN });
    const [hard1, hard2, v6only] = l.s.nodes as [LabNode, LabNode, LabNode];
    const rules = join(l.s.dir, 'v6only.nft');
    writeFileSync(rules, rejectRelaysOverIpv4());
    const nft = await sh('ip', ['netns', 'exec', v6only.routerNs!, 'nft', '-f', rules]);
    assert.equal(nft.code, 0, nft.stderr);
    await l.startServers();
    const t0 = Date.now();
    await l.upAll();
    const matrix: string[] = [];

    await t.test('hard ↔ hard (IPv4) with IPv6 behind stateful firewalls: direct over IPv6, a TCP transfer intact', async () => {
      const [ab, ba] = await Promise.all([untilDirect6(l, hard1, hard2, t0), untilDirect6(l, hard2, hard1, t0)]);
      assert.ok(ab !== null && ba !== null, `direct over IPv6 both ways (${ab}, ${ba} ms)`);
      const p = await pathTo(l, hard1, hard2);
      assert.equal(p.kind === 'direct' && p.endpoint, `[${nodeIp6(hard2)}]:41641`, 'the peer’s IPv6 address, its port kept (no NAT)');
      const started = Date.now();
      await transfer(l, hard1, hard2, 4 * 1024 * 1024); // checks both exit codes, the byte counts and the digest
      const p2 = await pathTo(l, hard1, hard2);
      assert.ok(p2.kind === 'direct' && p2.endpoint.startsWith('['), 'still direct over IPv6 after the transfer');
      matrix.push(
        `hard ↔ hard (IPv4), IPv6 behind stateful firewalls: direct over IPv6 (${p.kind === 'direct' ? p.endpoint : ''}), ` +
          `first trusted direct path ${Math.max(ab!, ba!)} ms after up; 4 MiB TCP transfer intact in ${Date.now() - started} ms`,
      );
    });

    await t.test('netcheck reports the IPv6 endpoint from the relays’ STUN over IPv6, the IPv4 NAT still hard', async () => {
      const r = await l.meshctl(hard1, ['netcheck', '--json']);
      assert.equal(r.code, 0, r.err);
      const report = JSON.parse(r.out) as NetReport;
      assert.equal(report.ipv6, `[${nodeIp6(hard1)}]:41641`);
      assert.equal(report.mappingVariesByDestIP, true, 'IPv4 stays behind the hard NAT');
      assert.ok(report.mapped.some((m) => m.server === `[${RELAY_IP6.east}]:3478`));
      const self = (await status(l, hard1)).self!;
      assert.ok(self.endpoints.includes(`[${nodeIp6(hard1)}]:41641`), `reported to control: ${self.endpoints}`);
    });

    await t.test('IPv4 to the relays refused: the relay connection goes over IPv6 and carries traffic', async () => {
      await l.waitFor(
        'relays over IPv6',
        async () => {
          const rel = (await status(l, v6only)).relays;
          return rel.length > 0 && rel.every((x) => x.connected && x.address?.startsWith('[2001:db8:113::'));
        },
        30_000,
      );
      await l.waitFor('v6only → hard1 over the relay', async () => (await pathTo(l, v6only, hard1)).kind === 'relay', 20_000);
      const r = await l.meshctl(v6only, ['ping', hard1.name, '-c', '2', '--until-direct=false']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /via relay\((east|west)\) in \d+ms/);
      await transfer(l, v6only, hard1, 1024 * 1024);
      const rel = (await status(l, v6only)).relays.map((x) => `${x.region} ${x.address}`).join(', ');
      matrix.push(`blocked (UDP) with IPv4 to the relays refused ↔ hard: relay over IPv6 (${rel}), 1 MiB TCP transfer intact`);
    });

    t.diagnostic(`NAT matrix (IPv6):\n${matrix.join('\n')}`);
    process.stderr.write(`\nNAT matrix (lab, --ipv6), ${Date.now() - t0} ms after up:\n${matrix.map((m) => `  ${m}`).join('\n')}\n`);
  } finally {
    await tearDown(l.s);
  }
});
