// Bare Linux NATs in the lab: routers that only masquerade, with no firewall
// dropping unsolicited WAN input (a Docker or LXC host, a DIY router), and an
// ISP router between each site and the internet (`--transit`). A peer's probe
// that reaches such a router before the node behind it has sent anything is
// recorded by conntrack and makes masquerade pick another port, so hole
// punching must open our own NAT first with TTL-limited openers (docs/nat.md).
// bare ↔ easy and bare ↔ bare must go direct; bare ↔ hard is measured and
// reported. Prints its rows of the NAT matrix with the times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Lab, tearDown } from '../../src/lab/lab.js';
import type { LabNode } from '../../src/lab/topology.js';
import { packageRoot } from '../../src/cli/version.js';
import { rootSkipReason } from '../helpers/root.js';
import { sh } from '../helpers/netns.js';
import { labPath, untilBothDirect } from '../helpers/direct-wait.js';

const skip = rootSkipReason('nft', 'ss');
const BIN = join(packageRoot(), 'bin', 'meshctl');
/** From all four `up`s to both directions direct: ~6 s on 2 busy cores; one failed attempt and its quiet would be ~40 s. */
const DIRECT_WITHIN_MS = 45_000;
/** bare ↔ hard is reported, not required: this long after the others are direct. */
const HARD_WAIT_MS = 12_000;

/** Counts, in an ISP router, the WireGuard-port datagrams that arrive with TTL 1: openers, which expire there. */
async function countOpeners(ns: string): Promise<void> {
  for (const args of [
    ['add', 'table', 'ip', 'meshlab_ttl'],
    ['add', 'chain', 'ip', 'meshlab_ttl', 'pre', '{', 'type', 'filter', 'hook', 'prerouting', 'priority', '-300', ';', '}'],
    ['add', 'rule', 'ip', 'meshlab_ttl', 'pre', 'ip', 'ttl', '1', 'udp', 'dport', '41641', 'counter'],
  ]) {
    const r = await sh('ip', ['netns', 'exec', ns, 'nft', ...args]);
    assert.equal(r.code, 0, r.stderr);
  }
}

async function openersSeen(ns: string): Promise<number> {
  const out = (await sh('ip', ['netns', 'exec', ns, 'nft', 'list', 'chain', 'ip', 'meshlab_ttl', 'pre'])).stdout;
  return Number(/packets (\d+)/.exec(out)?.[1] ?? Number.NaN);
}

test('bare NATs behind a transit hop: bare ↔ easy and bare ↔ bare go direct; bare ↔ hard reported', { skip, timeout: 150_000 }, async (t) => {
  const name = `b${randomBytes(4).readUInt32BE(0).toString(36).padStart(7, '0').slice(-5)}`;
  const l = await Lab.create({ name, kinds: ['easy-bare', 'easy', 'easy-bare', 'hard'], bin: BIN, dir: `/tmp/meshctl-lab-${name}`, transit: true });
  try {
    await l.build({ name, kinds: [], bin: BIN });
    await l.startServers();
    const [bare1, easy, bare2, hard] = l.s.nodes as [LabNode, LabNode, LabNode, LabNode];
    assert.equal(bare1.firewall, 'none');
    assert.equal(easy.firewall, 'drop');
    const rules = (await sh('ip', ['netns', 'exec', bare1.routerNs!, 'nft', 'list', 'ruleset'])).stdout;
    assert.doesNotMatch(rules, /ct state new drop/, 'a bare router drops nothing on its WAN');
    await countOpeners(bare1.transitNs!);
    const t0 = performance.now();
    await l.upAll();
    const matrix: string[] = [];

    await t.test('bare ↔ easy and bare ↔ bare: direct', async () => {
      const [be, bb] = await Promise.all([untilBothDirect(l, bare1, easy, t0, DIRECT_WITHIN_MS), untilBothDirect(l, bare1, bare2, t0, DIRECT_WITHIN_MS)]);
      matrix.push(`easy-bare ↔ easy (transit hop): ${be === null ? 'relay' : `direct, both sides ${(be / 1000).toFixed(2)} s after up`}`);
      matrix.push(`easy-bare ↔ easy-bare (transit hop): ${bb === null ? 'relay' : `direct, both sides ${(bb / 1000).toFixed(2)} s after up`}`);
      assert.ok(be !== null, `bare ↔ easy direct within ${DIRECT_WITHIN_MS / 1000} s`);
      assert.ok(bb !== null, `bare ↔ bare direct within ${DIRECT_WITHIN_MS / 1000} s`);
      const p = await labPath(l, bare1, bare2);
      assert.equal(p.kind === 'direct' && p.endpoint, `${bare2.wanIp}:41641`, 'through the bare NAT’s own (kept) port: no tuple clash');
      // the openers reached the first ISP router with TTL 1 and expired there: that is what kept the peers' routers clean
      assert.ok((await openersSeen(bare1.transitNs!)) > 0, 'openers arrive at the ISP router with TTL 1');
    });

    await t.test('bare ↔ hard: reported', async () => {
      const bh = await untilBothDirect(l, bare1, hard, performance.now(), HARD_WAIT_MS);
      const p = await labPath(l, bare1, hard);
      assert.notEqual(p.kind, 'none', 'bare ↔ hard has a path');
      matrix.push(`easy-bare ↔ hard (transit hop): ${bh !== null ? 'direct' : `relay "${p.kind === 'relay' ? p.region : p.kind}"`}`);
    });

    t.diagnostic(`NAT matrix (bare):\n${matrix.join('\n')}`);
    process.stderr.write(`\nNAT matrix (lab, bare NATs):\n${matrix.map((m) => `  ${m}`).join('\n')}\n`);
  } finally {
    await tearDown(l.s);
  }
});
