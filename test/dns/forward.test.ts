// Forwarding through the resolver to fake upstreams on loopback: EDNS0, split
// routes, truncation retried over TCP, dead upstreams answered with SERVFAIL
// within the bound while mesh names keep answering, spoofed replies ignored,
// and mesh names never leaving the node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { buildZone } from '../../src/dns/zone.js';
import { queryDns } from '../../src/dns/client.js';
import { parseIpEndpoint } from '../../src/util/netaddr.js';
import { answerA, fakeUpstream, node, queryWire, startServer, SUFFIX, testMap, until } from './fixtures.js';

const optOf = (p: dnsPacket.Packet): dnsPacket.OptAnswer | undefined => p.additionals?.find((a): a is dnsPacket.OptAnswer => a.type === 'OPT');

test('a non-mesh name is forwarded with a new ID and an EDNS0 OPT; the answer comes back under the client’s ID', async () => {
  const up = await fakeUpstream((q) => answerA(q, ['192.0.2.7']));
  const { server, host, port } = await startServer({ upstreams: () => [up.endpoint] });
  try {
    server.setZone(buildZone(testMap([node(5, 'nas')])));
    const r = await queryDns({ host, port }, 'www.example.com');
    assert.equal(r.rcode, 'NOERROR');
    assert.equal(r.authoritative, false);
    assert.deepEqual(
      r.answers.map((a) => a.data),
      ['192.0.2.7'],
    );
    // a client without EDNS0 gets no OPT back; with it, an OPT
    const bare = dnsPacket.decode((await server.answer(queryWire('www.example.com'), '127.0.0.1', 'udp'))!);
    assert.equal(bare.id, 4242);
    assert.equal(bare.additionals?.length, 0);
    const withOpt = queryWire('www.example.com', 'A', {
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: dnsPacket.DNSSEC_OK, flag_do: true, options: [] }],
    });
    const opt = dnsPacket.decode((await server.answer(withOpt, '127.0.0.1', 'udp'))!).additionals?.find((a) => a.type === 'OPT');
    assert.ok(opt, 'OPT in the reply');
    const seen = up.queries.map((q) => q.packet);
    assert.equal(seen.length, 3);
    for (const q of seen) {
      assert.equal(optOf(q)?.udpPayloadSize, 1232, 'EDNS0 upstream');
    }
    assert.notEqual(seen[1]!.id, 4242, 'a new ID upstream');
    assert.equal(optOf(seen[2]!)?.flag_do, true, 'the DO bit passed on');
    assert.equal(optOf(seen[1]!)?.flag_do, false);
    assert.equal(server.stats().forwarded, 3);
  } finally {
    await server.close();
    await up.close();
  }
});

test('a split route sends its domain to its resolver, the longest route winning; other names go upstream', async () => {
  const upstream = await fakeUpstream((q) => answerA(q, ['192.0.2.1']));
  const corp = await fakeUpstream((q) => answerA(q, ['10.1.2.3']));
  const lab = await fakeUpstream((q) => answerA(q, ['10.9.9.9']));
  const { server, host, port } = await startServer({ upstreams: () => [upstream.endpoint] });
  try {
    const routes = [
      { domain: 'corp.example', resolvers: [corp.endpoint.text] },
      { domain: 'lab.corp.example', resolvers: [lab.endpoint.text] },
    ];
    server.setZone(buildZone(testMap([], { routes })));
    const s = { host, port };
    assert.deepEqual(
      (await queryDns(s, 'wiki.CORP.example')).answers.map((a) => a.data),
      ['10.1.2.3'],
    );
    assert.deepEqual(
      (await queryDns(s, 'x.lab.corp.example')).answers.map((a) => a.data),
      ['10.9.9.9'],
    );
    assert.deepEqual(
      (await queryDns(s, 'notcorp.example')).answers.map((a) => a.data),
      ['192.0.2.1'],
    );
    assert.equal(corp.queries.length, 1);
    assert.equal(lab.queries.length, 1);
    assert.equal(upstream.queries.length, 1);
  } finally {
    await server.close();
    for (const u of [upstream, corp, lab]) await u.close();
  }
});

test('an upstream’s truncated UDP answer is asked again over TCP', async () => {
  const many = Array.from({ length: 80 }, (_, i) => `10.0.0.${i}`);
  const up = await fakeUpstream((q, transport) =>
    transport === 'udp' ? { ...answerA(q, []), flags: dnsPacket.TRUNCATED_RESPONSE | dnsPacket.RECURSION_AVAILABLE } : answerA(q, many),
  );
  const { server, host, port } = await startServer({ upstreams: () => [up.endpoint] });
  try {
    const r = await queryDns({ host, port }, 'big.example.com');
    assert.equal(r.answers.length, 80, 'the whole answer, over TCP from upstream and to the client');
    assert.equal(r.transport, 'tcp', 'more than the client’s 1232 bytes: truncated to it, then TCP');
    assert.deepEqual(
      up.queries.map((q) => q.transport),
      ['udp', 'tcp', 'udp', 'tcp'],
    );
  } finally {
    await server.close();
    await up.close();
  }
});

test('upstreams down: SERVFAIL within the bound, the next upstream tried, and mesh names answer meanwhile', async () => {
  // a port with nothing behind it (ICMP unreachable: fails fast) and one that never answers (times out)
  const silent = await fakeUpstream(() => 'ignore');
  const closed = createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, '127.0.0.1', () => r()));
  const deadPort = closed.address().port;
  closed.close();
  const { server, host, port } = await startServer({ upstreams: () => [parseIpEndpoint(`127.0.0.1:${deadPort}`), silent.endpoint] });
  try {
    server.setZone(buildZone(testMap([node(5, 'nas')])));
    const t0 = performance.now();
    const forwarded = queryDns({ host, port }, 'www.example.com', 'A', { timeoutMs: 10_000 });
    // while the forward waits on the silent upstream, a mesh name answers
    const mesh = await queryDns({ host, port }, `nas.${SUFFIX}`);
    assert.deepEqual(
      mesh.answers.map((a) => a.data),
      ['100.64.0.5'],
    );
    const meshMs = performance.now() - t0;
    const r = await forwarded;
    const ms = performance.now() - t0;
    assert.equal(r.rcode, 'SERVFAIL');
    assert.ok(ms < 5000, `SERVFAIL after ${ms.toFixed(0)} ms, bound 2000 ms`);
    assert.ok(meshMs < ms, 'the mesh answer did not wait for the forward');
    assert.ok(silent.queries.length >= 1, 'the second upstream was tried');
    assert.equal(server.stats().servfail, 1);
  } finally {
    await server.close();
    await silent.close();
  }
});

test('replies with the wrong ID or question are ignored (SERVFAIL when no right one comes); a REFUSED upstream makes the next one asked', async () => {
  const spoof = await fakeUpstream((q) => ({ ...answerA(q, ['6.6.6.6']), id: (q.id! + 1) & 0xffff }));
  const other = await fakeUpstream((q) => answerA({ ...q, questions: [{ type: 'A', name: 'evil.example' }] }, ['6.6.6.6']));
  const refusing = await fakeUpstream((q) => ({ ...answerA(q, []), flags: 5 }));
  const good = await fakeUpstream((q) => answerA(q, ['192.0.2.2']));
  const { server, host, port } = await startServer({ upstreams: () => [spoof.endpoint, other.endpoint], forwardTotalTimeoutMs: 1500 });
  try {
    assert.equal((await queryDns({ host, port }, 'www.example.com')).rcode, 'SERVFAIL');
    const two = await startServer({ upstreams: () => [refusing.endpoint, good.endpoint] });
    try {
      assert.deepEqual(
        (await queryDns({ host: two.host, port: two.port }, 'www.example.com')).answers.map((a) => a.data),
        ['192.0.2.2'],
      );
    } finally {
      await two.server.close();
    }
  } finally {
    await server.close();
    for (const u of [spoof, other, refusing, good]) await u.close();
  }
});

test('an upstream answer with a name dns-packet would not encode back (a label ending in a dot, a byte not UTF-8) becomes SERVFAIL', async () => {
  /** `packet` encoded with every X in its names turned into a dot inside the label and every Y into the byte 0xff. */
  const dotted = (packet: dnsPacket.Packet): Buffer => {
    const wire = dnsPacket.encode(packet);
    for (let i = wire.indexOf('X'); i >= 0; i = wire.indexOf('X', i + 1)) wire[i] = 0x2e;
    for (let i = wire.indexOf('Y'); i >= 0; i = wire.indexOf('Y', i + 1)) wire[i] = 0xff;
    return wire;
  };
  const up = await fakeUpstream((q) => {
    const name = q.questions![0]!.name;
    const data = name.startsWith('mx') ? { preference: 10, exchange: 'mailY.example' } : 'aliasX.example';
    const type = name.startsWith('mx') ? 'MX' : 'CNAME';
    return dotted({ ...answerA(q, []), answers: [{ type, name, ttl: 60, class: 'IN', data } as dnsPacket.Answer] });
  });
  const { server, host, port } = await startServer({ upstreams: () => [up.endpoint], forwardTotalTimeoutMs: 1000 });
  try {
    assert.equal((await queryDns({ host, port }, 'cname.example.com')).rcode, 'SERVFAIL');
    assert.equal((await queryDns({ host, port }, 'mx.example.com', 'MX')).rcode, 'SERVFAIL');
  } finally {
    await server.close();
    await up.close();
  }
});

test('mesh names and the mesh reverse zones never leave the node; the server never forwards to itself', async () => {
  const up = await fakeUpstream((q) => answerA(q, ['192.0.2.1']));
  const { server, host, port } = await startServer({ upstreams: () => [up.endpoint] });
  try {
    server.setZone(buildZone(testMap([node(5, 'nas')])));
    const s = { host, port };
    assert.equal((await queryDns(s, `unknown.${SUFFIX}`)).rcode, 'NXDOMAIN');
    assert.equal((await queryDns(s, `nas.${SUFFIX}`, 'MX')).rcode, 'NOERROR');
    assert.equal((await queryDns(s, '100.64.9.9', 'PTR')).rcode, 'NXDOMAIN');
    assert.equal((await queryDns(s, 'fd7a:115c:a1e0::99', 'PTR')).rcode, 'NXDOMAIN');
    assert.equal(up.queries.length, 0);
    assert.equal((await queryDns(s, '192.168.1.1', 'PTR')).rcode, 'NOERROR', 'other reverse names are forwarded');
    assert.equal(up.queries.length, 1);
  } finally {
    await server.close();
    await up.close();
  }
  let selfPort = 0;
  const self = await startServer({ upstreams: () => [parseIpEndpoint(`127.0.0.1:${selfPort}`)] });
  selfPort = self.port;
  try {
    const r = await queryDns({ host: self.host, port: self.port }, 'www.example.com');
    assert.equal(r.rcode, 'SERVFAIL');
    assert.equal(self.server.stats().forwarded, 1, 'one forward, not a loop');
  } finally {
    await self.server.close();
  }
});

test('forwards in flight are bounded: past the bound, SERVFAIL at once', async () => {
  const silent = await fakeUpstream(() => 'ignore');
  const { server } = await startServer({ upstreams: () => [silent.endpoint], maxInflightForwards: 2, forwardTotalTimeoutMs: 3000 });
  try {
    const q = (id: number) => queryWire(`n${id}.example.com`, 'A', { id });
    const held = [server.answer(q(1), '127.0.0.1', 'udp'), server.answer(q(2), '127.0.0.1', 'udp')];
    const third = dnsPacket.decode((await server.answer(q(3), '127.0.0.1', 'udp'))!);
    assert.equal(third.flags! & 0xf, 2, 'SERVFAIL');
    assert.equal(server.stats().forwardsInFlight, 2);
    await Promise.all(held);
    assert.equal(server.stats().forwardsInFlight, 0);
  } finally {
    await server.close();
    await silent.close();
  }
});

test('closing the server while a forward is in flight: the late answer is dropped, nothing throws', async () => {
  const silent = await fakeUpstream(() => 'ignore');
  const { server, host, port } = await startServer({ upstreams: () => [silent.endpoint], forwardTotalTimeoutMs: 1000 });
  const errors: unknown[] = [];
  const onErr = (e: unknown): void => void errors.push(e);
  process.on('unhandledRejection', onErr);
  process.on('uncaughtException', onErr);
  try {
    const sock = createSocket('udp4');
    sock.send(queryWire('late.example.com'), port, host);
    await until(() => server.stats().forwardsInFlight === 1);
    await server.close();
    await until(() => server.stats().forwardsInFlight === 0);
    await new Promise((r) => setImmediate(r));
    sock.close();
    assert.deepEqual(errors, []);
  } finally {
    process.off('unhandledRejection', onErr);
    process.off('uncaughtException', onErr);
    await silent.close();
  }
});
