// NAT traversal in the lab: nodes behind public, easy, hard and UDP-blocked
// NATs, two relay regions, the control server. Direct where a direct path can
// be made, relayed where not, fallback to the relay when the direct path is
// cut mid-transfer and back again, a relay restart, and fuzzed input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Lab, tearDown } from '../../src/lab/lab.js';
import { RELAYS, type LabNode } from '../../src/lab/topology.js';
import type { Status } from '../../src/localapi/types.js';
import { packageRoot } from '../../src/cli/version.js';
import { bindingRequest } from '../../src/nat/stun.js';
import { DISCO_MAGIC } from '../../src/nat/disco.js';
import { rootSkipReason } from '../helpers/root.js';
import { sh } from '../helpers/netns.js';
import { nodeStatus as status, pathTo } from '../helpers/lab-status.js';
import { labTransfer } from '../helpers/lab-xfer.js';
import type { XferResult } from '../helpers/xfer.js';

const skip = rootSkipReason('nft', 'miniupnpd', 'ss', 'ping');
const BIN = join(packageRoot(), 'bin', 'meshctl');

async function icmp(l: Lab, from: LabNode, to: LabNode, count = 3): Promise<boolean> {
  const ip = (await status(l, to)).self!.ips[0]!;
  const r = await sh('ip', ['netns', 'exec', from.ns, 'ping', '-c', String(count), '-W', '2', '-i', '0.2', ip], 20_000);
  return r.code === 0;
}

/** Pings until a direct pong (or `ms` pass); returns the ms it took from `since`, or null. */
async function untilDirect(l: Lab, a: LabNode, b: LabNode, since: number, ms = 25_000): Promise<number | null> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const r = await l.meshctl(a, ['ping', b.name, '-c', '1', '--timeout', '1s']);
    if (/via \d+\.\d+\.\d+\.\d+:\d+ in/.test(r.out)) return Date.now() - since;
    await new Promise((res) => setTimeout(res, 250));
  }
  return null;
}

const transfer = (l: Lab, from: LabNode, to: LabNode, bytes: number, during?: () => Promise<void>): Promise<XferResult> =>
  labTransfer(l, from, to, bytes, { port: 5301, clientTimeoutMs: 180_000, ...(during ? { during } : {}) });

test('NAT traversal and relay fallback in the lab', { skip, timeout: 420_000 }, async (t) => {
  // a random name (the lab names interfaces from its first 6 characters): runs side by side never share one
  const name = `t${randomBytes(4).readUInt32BE(0).toString(36).padStart(7, '0').slice(-5)}`;
  const l = await Lab.create({ name, kinds: ['public', 'easy', 'easy', 'hard', 'hard', 'blocked', 'upnp'], bin: BIN, dir: `/tmp/meshctl-lab-${name}` });
  try {
    await l.build({ name, kinds: [], bin: BIN });
    await l.startServers();
    const [pub, easy1, easy2, hard1, hard2, blocked, upnp] = l.s.nodes as [LabNode, LabNode, LabNode, LabNode, LabNode, LabNode, LabNode];
    const t0 = Date.now();
    await l.upAll();
    const matrix: string[] = [];

    await t.test('easy ↔ easy and public ↔ easy find a direct path; traffic flows', async () => {
      const [e2e, p2e] = await Promise.all([untilDirect(l, easy1, easy2, t0), untilDirect(l, pub, easy1, t0)]);
      assert.ok(e2e !== null, 'easy ↔ easy direct');
      assert.ok(p2e !== null, 'public ↔ easy direct');
      matrix.push(`easy ↔ easy: direct, first direct pong ${e2e} ms after up`, `public ↔ easy: direct, first direct pong ${p2e} ms after up`);
      const path = await pathTo(l, easy1, easy2);
      assert.equal(path.kind, 'direct');
      assert.equal(path.kind === 'direct' && path.endpoint, `${easy2.wanIp}:41641`, 'through the NAT’s mapped port');
      assert.ok(await icmp(l, easy1, easy2));
      assert.ok(await icmp(l, pub, easy1));
    });

    await t.test('UDP blocked: relayed path, and a TCP transfer arrives intact', async () => {
      await l.waitFor('blocked → easy over the relay', async () => (await pathTo(l, blocked, easy1)).kind === 'relay', 20_000);
      const r = await l.meshctl(blocked, ['ping', easy1.name, '-c', '2', '--until-direct=false']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /via relay\((east|west)\) in \d+ms/);
      await transfer(l, blocked, easy1, 4 * 1024 * 1024); // checks both exit codes, the byte counts and the digest
      const nc = await l.meshctl(blocked, ['netcheck', '--json']);
      const report = JSON.parse(nc.out) as { udp: boolean; preferredRegion: string | null };
      assert.equal(report.udp, false);
      assert.ok(report.preferredRegion, 'a home region from HTTPS latency');
      matrix.push(`blocked ↔ easy: relay "${(await pathTo(l, blocked, easy1)).kind === 'relay' ? report.preferredRegion : '?'}", 4 MiB TCP transfer intact`);
    });

    await t.test('hard NAT: whatever path is achieved carries traffic (reported)', async () => {
      for (const [a, b, label] of [
        [hard1, easy1, 'hard ↔ easy'],
        [hard1, hard2, 'hard ↔ hard'],
        [hard1, pub, 'hard ↔ public'],
      ] as const) {
        const direct = await untilDirect(l, a, b, Date.now(), 12_000);
        const path = await pathTo(l, a, b);
        assert.notEqual(path.kind, 'none', `${label} has a path`);
        assert.ok(await icmp(l, a, b), `${label} carries traffic`);
        matrix.push(
          `${label}: ${direct !== null ? `direct (${path.kind === 'direct' ? path.endpoint : ''})` : `relay "${path.kind === 'relay' ? path.region : '?'}"`}`,
        );
      }
      const nc = JSON.parse((await l.meshctl(hard1, ['netcheck', '--json'])).out) as { mappingVariesByDestIP: boolean };
      assert.equal(nc.mappingVariesByDestIP, true, 'hard NAT detected');
      const ne = JSON.parse((await l.meshctl(easy1, ['netcheck', '--json'])).out) as { mappingVariesByDestIP: boolean; ipv4: string };
      assert.equal(ne.mappingVariesByDestIP, false);
      assert.equal(ne.ipv4, `${easy1.wanIp}:41641`);
    });

    await t.test('behind a miniupnpd NAT: the port is mapped, and even a hard-NAT peer gets a direct path to it', async () => {
      const nc = JSON.parse((await l.meshctl(upnp, ['netcheck', '--json'])).out) as { portMapping: string[] };
      assert.deepEqual(nc.portMapping, ['UPnP', 'NAT-PMP', 'PCP']);
      const ms = await untilDirect(l, hard1, upnp, Date.now(), 15_000);
      assert.ok(ms !== null, 'hard → upnp direct');
      const path = await pathTo(l, hard1, upnp);
      assert.equal(path.kind === 'direct' && path.endpoint, `${upnp.wanIp}:41641`, 'through the mapped port');
      assert.ok(await icmp(l, hard1, upnp));
      matrix.push(`hard ↔ upnp (miniupnpd, NAT-PMP mapping): direct via ${upnp.wanIp}:41641`);
      // each protocol on its own against miniupnpd: a mapping, and the DNAT rule it installed
      const script = `import(${JSON.stringify(join(packageRoot(), 'dist', 'src', 'nat', 'portmap.js'))}).then(async (m) => {
        const gw = m.defaultGateway(); const me = await m.addressTowards(gw);
        const out = { pcp: await m.pcpMap(gw, me, 40001), upnp: await m.upnpMap(gw, me, 40002), natpmp: await m.natpmpMap(gw, 40003) };
        process.stdout.write(JSON.stringify(out)); })`;
      const r = await sh('ip', ['netns', 'exec', upnp.ns, process.execPath, '-e', script], 30_000);
      const maps = JSON.parse(r.stdout) as Record<string, { protocol: string; external: string } | null>;
      assert.equal(maps.pcp?.external, `${upnp.wanIp}:40001`, 'PCP MAP');
      assert.equal(maps.upnp?.external, `${upnp.wanIp}:40002`, 'UPnP AddPortMapping');
      assert.equal(maps.natpmp?.external, `${upnp.wanIp}:40003`, 'NAT-PMP');
      const rules = (await sh('ip', ['netns', 'exec', upnp.routerNs!, 'nft', 'list', 'chain', 'inet', 'filter', 'prerouting_miniupnpd'])).stdout;
      for (const port of [40001, 40002, 40003, 41641]) assert.match(rules, new RegExp(`dport ${port} dnat ip to ${upnp.lanIp}:${port}`), `DNAT for ${port}`);
    });

    await t.test('a direct path cut mid-transfer falls back to the relay within 5 s; the transfer completes; it returns to direct', async () => {
      assert.equal((await pathTo(l, easy1, easy2)).kind, 'direct');
      const router = easy1.routerNs!;
      const rules = `table inet meshlab_cut {\n  chain f {\n    type filter hook forward priority -10; policy accept;\n    ip daddr ${easy2.wanIp} udp dport 41641 drop\n    ip saddr ${easy2.wanIp} udp sport 41641 drop\n  }\n}\n`;
      let fallbackMs = -1;
      const x = await transfer(l, easy1, easy2, 48 * 1024 * 1024, async () => {
        await new Promise((r) => setTimeout(r, 700));
        const cutAt = Date.now();
        const r = await sh('sh', ['-c', `printf '%s' '${rules}' | ip netns exec ${router} nft -f -`]);
        assert.equal(r.code, 0, r.stderr);
        await l.waitFor('fallback to relay', async () => (await pathTo(l, easy1, easy2)).kind === 'relay', 10_000);
        fallbackMs = Date.now() - cutAt;
      });
      assert.equal(x.bytes, 48 * 1024 * 1024, 'transfer complete and intact across the switch (transfer() checked both ends)');
      assert.ok(fallbackMs >= 0 && fallbackMs <= 5000, `fell back in ${fallbackMs} ms`);
      await sh('ip', ['netns', 'exec', router, 'nft', 'delete', 'table', 'inet', 'meshlab_cut']);
      const back = Date.now();
      await l.waitFor(
        'back to direct',
        async () => {
          await icmp(l, easy1, easy2, 1);
          return (await pathTo(l, easy1, easy2)).kind === 'direct';
        },
        20_000,
      );
      const again = Date.now() - back;
      matrix.push(
        `direct path cut mid-transfer (48 MiB): relay after ${fallbackMs} ms, transfer intact (max stall ${x.maxGapMs} ms), ` +
          `direct again ${again} ms after unblocking`,
      );
    });

    await t.test('a relay restarted mid-session: nodes reconnect and relayed traffic resumes', async () => {
      const home = (await status(l, blocked)).homeRegion!;
      assert.ok(await icmp(l, blocked, easy1));
      const restarted = Date.now();
      await l.restartRelay(home);
      await l.waitFor('relayed traffic again', () => icmp(l, blocked, easy1, 1), 30_000);
      matrix.push(`relay "${home}" restarted: relayed traffic back after ${Date.now() - restarted} ms`);
    });

    await t.test('fuzzed STUN, disco and random datagrams are dropped and counted; daemon and relay stay up', async () => {
      const before = await status(l, pub);
      const script = `
        const dgram = require('node:dgram'); const crypto = require('node:crypto');
        const s = dgram.createSocket('udp4'); let n = 0;
        const pkts = JSON.parse(process.argv[1]).map((h) => Buffer.from(h, 'hex'));
        const go = () => { for (let i = 0; i < 200 && n < 6000; i++, n++) {
          const base = pkts[n % pkts.length]; const b = Buffer.from(base);
          if (n % 3) b[crypto.randomInt(b.length)] ^= 1 << crypto.randomInt(8);
          const dst = n % 2 ? ['${pub.wanIp}', 41641] : ['${RELAYS[0]!.ip}', ${RELAYS[0]!.stunPort}];
          s.send(n % 5 === 0 ? crypto.randomBytes(crypto.randomInt(1, 300)) : b, dst[1], dst[0]); }
          if (n < 6000) setTimeout(go, 5); else setTimeout(() => s.close(), 200); };
        go();`;
      const seeds = [
        bindingRequest().packet,
        Buffer.concat([DISCO_MAGIC, randomBytes(90)]),
        Buffer.concat([Buffer.from([4, 0, 0, 0]), randomBytes(60)]),
        Buffer.concat([Buffer.from([1, 0, 0, 0]), randomBytes(144)]),
      ].map((b) => b.toString('hex'));
      const r = await sh('ip', ['netns', 'exec', l.s.controlNs, process.execPath, '-e', script, JSON.stringify(seeds)], 60_000);
      assert.equal(r.code, 0, r.stderr);
      const after = await status(l, pub);
      const dropped = (s: Status) => Object.values((s.counters!.engine as { dropped: Record<string, number> }).dropped).reduce((a, b) => a + b, 0);
      const disco = (s: Status) => Object.values((s.counters!.disco as { dropped: Record<string, number> }).dropped).reduce((a, b) => a + b, 0);
      assert.ok(dropped(after) + disco(after) - dropped(before) - disco(before) >= 2500, 'garbage counted as dropped');
      assert.equal(after.backendState, 'Running');
      assert.ok(await icmp(l, pub, easy1), 'the daemon still carries traffic');
      const relayPid = l.s.pids['relay-east']!;
      process.kill(relayPid, 0);
      const nc = JSON.parse((await l.meshctl(easy1, ['netcheck', '--json'])).out) as { regionLatencyMs: Record<string, number> };
      assert.ok('east' in nc.regionLatencyMs, 'the relay’s STUN server still answers');
    });

    t.diagnostic(`NAT matrix:\n${matrix.join('\n')}`);
    process.stderr.write(`\nNAT matrix (lab):\n${matrix.map((m) => `  ${m}`).join('\n')}\n`);
  } finally {
    await tearDown(l.s);
  }
});
