// The resolver over real UDP and TCP on loopback: mesh names, zone updates,
// refusals, malformed input, truncation and TCP framing, and its limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { buildZone } from '../../src/dns/zone.js';
import { queryDns } from '../../src/dns/client.js';
import { DnsServer } from '../../src/dns/server.js';
import { node, queryWire, startServer, SUFFIX, testMap, until } from './fixtures.js';

const decode = (b: Buffer | null): dnsPacket.DecodedPacket & { rcode?: string } => dnsPacket.decode(b!) as dnsPacket.DecodedPacket & { rcode?: string };

test('mesh names over UDP: A, AAAA, PTR, NXDOMAIN and NODATA (with the SOA), any case, offline peers too', async () => {
  const { server, host, port } = await startServer();
  try {
    server.setZone(buildZone(testMap([node(5, 'nas', { online: false }), node(6, 'pi')])));
    const s = { host, port };
    const a = await queryDns(s, `NaS.Mesh.Internal`, 'A');
    assert.equal(a.rcode, 'NOERROR');
    assert.equal(a.authoritative, true);
    assert.deepEqual(a.answers, [{ name: 'NaS.Mesh.Internal', type: 'A', ttl: 10, data: '100.64.0.5' }], 'the answer echoes the question’s case');
    assert.deepEqual(
      (await queryDns(s, `pi.${SUFFIX}`, 'AAAA')).answers.map((r) => r.data),
      ['fd7a:115c:a1e0::6'],
    );
    assert.deepEqual(
      (await queryDns(s, '100.64.0.6', 'PTR')).answers.map((r) => r.data),
      [`pi.${SUFFIX}`],
    );
    assert.deepEqual(
      (await queryDns(s, 'fd7a:115c:a1e0::5', 'PTR')).answers.map((r) => r.data),
      [`nas.${SUFFIX}`],
    );
    const nx = await queryDns(s, `gone.${SUFFIX}`, 'A');
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.equal(nx.authorities[0]?.type, 'SOA');
    const nodata = await queryDns(s, `nas.${SUFFIX}`, 'TXT');
    assert.equal(nodata.rcode, 'NOERROR');
    assert.deepEqual(nodata.answers, []);
    assert.equal(nodata.authorities[0]?.type, 'SOA');
    assert.equal((await queryDns(s, '99.99.64.100.in-addr.arpa', 'PTR')).rcode, 'NXDOMAIN');
    const st = server.stats();
    assert.equal(st.answered, 4);
    assert.equal(st.nxdomain, 2);
    assert.equal(st.nodata, 1);
    assert.equal(st.forwarded, 0);
  } finally {
    await server.close();
  }
});

test('setZone: a rename and a deletion leave no stale answer; null serves no mesh names', async () => {
  const { server, host, port } = await startServer();
  try {
    const s = { host, port };
    server.setZone(buildZone(testMap([node(5, 'nas'), node(6, 'pi')])));
    assert.equal((await queryDns(s, `nas.${SUFFIX}`)).answers.length, 1);
    server.setZone(buildZone(testMap([node(5, 'storage')])));
    assert.equal((await queryDns(s, `nas.${SUFFIX}`)).rcode, 'NXDOMAIN', 'old name gone');
    assert.equal((await queryDns(s, `pi.${SUFFIX}`)).rcode, 'NXDOMAIN', 'deleted peer gone');
    assert.deepEqual(
      (await queryDns(s, `storage.${SUFFIX}`)).answers.map((a) => a.data),
      ['100.64.0.5'],
    );
    assert.deepEqual(
      (await queryDns(s, '100.64.0.5', 'PTR')).answers.map((a) => a.data),
      [`storage.${SUFFIX}`],
    );
    assert.equal((await queryDns(s, '100.64.0.6', 'PTR')).rcode, 'NXDOMAIN');
    server.setZone(null);
    assert.equal((await queryDns(s, `storage.${SUFFIX}`)).rcode, 'SERVFAIL', 'no zone and no upstream');
  } finally {
    await server.close();
  }
});

test('extra records, a 1000-name zone, and IPv6 listening', async () => {
  const { server, host, port } = await startServer({}, ['::1']);
  try {
    const peers = Array.from({ length: 1000 }, (_, i) => node(i + 2, `host${i + 2}`));
    server.setZone(buildZone(testMap(peers, { records: [{ name: 'nas.home.arpa', type: 'A', value: '100.64.0.9' }] })));
    const s = { host, port };
    assert.equal(host, '::1');
    for (const i of [2, 500, 1001]) assert.equal((await queryDns(s, `host${i}.${SUFFIX}`)).answers.length, 1);
    assert.deepEqual(
      (await queryDns(s, 'nas.home.arpa')).answers.map((a) => a.data),
      ['100.64.0.9'],
    );
  } finally {
    await server.close();
  }
});

test('a source the daemon does not allow gets REFUSED, over UDP and TCP', async () => {
  const { server, host, port } = await startServer({ allowSource: (ip) => ip !== '127.0.0.1' });
  try {
    server.setZone(buildZone(testMap([node(5, 'nas')])));
    assert.equal((await queryDns({ host, port }, `nas.${SUFFIX}`)).rcode, 'REFUSED');
    const t = await queryDns({ host, port }, `nas.${SUFFIX}`, 'A', { tcp: true });
    assert.equal(t.rcode, 'REFUSED');
    assert.deepEqual(t.answers, []);
    assert.equal(server.stats().refused, 2);
    assert.equal(decode(await server.answer(queryWire(`nas.${SUFFIX}`), '::ffff:100.64.0.9', 'udp')).answers?.length, 1, 'allowed');
  } finally {
    await server.close();
  }
});

test('malformed, truncated, garbage and non-query messages are dropped or refused and counted; the server keeps answering', async () => {
  const { server, host, port } = await startServer({ allowSource: (ip) => ip !== '192.0.2.1' });
  try {
    server.setZone(buildZone(testMap([node(5, 'nas')])));
    const good = queryWire(`nas.${SUFFIX}`);
    assert.equal(await server.answer(Buffer.from('garbage!'), '127.0.0.1', 'udp'), null);
    assert.equal(await server.answer(good.subarray(0, good.length - 3), '127.0.0.1', 'udp'), null);
    const response = dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: `nas.${SUFFIX}` }] });
    assert.equal(await server.answer(response, '127.0.0.1', 'udp'), null, 'QR=1 is never answered');
    assert.equal(server.stats().dropped, 3);
    const two = dnsPacket.encode({
      type: 'query',
      id: 7,
      questions: [
        { type: 'A', name: 'a.mesh.internal' },
        { type: 'A', name: 'b.mesh.internal' },
      ],
    });
    assert.equal(decode(await server.answer(two, '127.0.0.1', 'udp')).flags! & 0xf, 1, 'two questions: FORMERR');
    const none = dnsPacket.encode({ type: 'query', id: 7, questions: [] });
    assert.equal(decode(await server.answer(none, '127.0.0.1', 'udp')).flags! & 0xf, 1, 'no question: FORMERR');
    const notify = dnsPacket.encode({ type: 'query', id: 8, flags: 4 << 11, questions: [{ type: 'SOA', name: SUFFIX }] });
    assert.equal(decode(await server.answer(notify, '127.0.0.1', 'udp')).flags! & 0xf, 4, 'NOTIFY: NOTIMP');
    const chaos = dnsPacket.encode({ type: 'query', id: 9, questions: [{ type: 'TXT', class: 'CH', name: 'version.bind' }] });
    assert.equal(decode(await server.answer(chaos, '127.0.0.1', 'udp')).flags! & 0xf, 4, 'class CH: NOTIMP');
    const odd = queryWire('bad label.mesh.internal');
    assert.equal(decode(await server.answer(odd, '127.0.0.1', 'udp')).flags! & 0xf, 1, 'a space in a label: FORMERR');
    const edns1 = queryWire(`nas.${SUFFIX}`, 'A', {
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 1, flags: 0, flag_do: false, options: [] }],
    });
    const badvers = decode(await server.answer(edns1, '127.0.0.1', 'udp'));
    assert.equal((badvers.additionals![0] as dnsPacket.OptAnswer).extendedRcode, 1, 'EDNS version 1: BADVERS');
    // a label holding a dot decodes as 'a.b' but would encode as two labels: not echoed, the reply still decodes
    const dotted = queryWire('versioX.bind', 'TXT');
    dotted[dotted.indexOf('X')] = 0x2e;
    for (const source of ['127.0.0.1', '192.0.2.1']) {
      const r = decode(await server.answer(dotted, source, 'udp'));
      assert.deepEqual(r.questions, []);
    }
    // over the socket too: garbage datagrams, then a real query still answered
    const sock = createSocket('udp4');
    for (let i = 0; i < 20; i++) sock.send(Buffer.from([i, 1, 2, 3, 0xff, 0xc0]), port, host);
    await until(() => server.stats().dropped >= 23);
    sock.close();
    assert.deepEqual(
      (await queryDns({ host, port }, `nas.${SUFFIX}`)).answers.map((a) => a.data),
      ['100.64.0.5'],
    );
    const st = server.stats();
    assert.equal(st.formerr, 5);
    assert.equal(st.notimp, 2);
  } finally {
    await server.close();
  }
});

/** Reads framed replies from a TCP socket until `n` arrived. */
function readFramed(sock: Socket, n: number): Promise<dnsPacket.DecodedPacket[]> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const out: dnsPacket.DecodedPacket[] = [];
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`closed after ${out.length} replies`)));
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const p = buf.length >= 2 ? dnsPacket.streamDecode(buf) : null;
        if (!p) break;
        out.push(p as dnsPacket.DecodedPacket);
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= n) resolve(out);
    });
  });
}

test('TCP: two queries pipelined in one write get two framed answers; an oversized frame closes the connection', async () => {
  const { server, host, port } = await startServer();
  try {
    server.setZone(buildZone(testMap([node(5, 'nas'), node(6, 'pi')])));
    const sock = connect({ host, port });
    await new Promise((r) => sock.once('connect', r));
    const replies = readFramed(sock, 2);
    const q1 = dnsPacket.streamEncode({ type: 'query', id: 1, questions: [{ type: 'A', name: `nas.${SUFFIX}` }] });
    const q2 = dnsPacket.streamEncode({ type: 'query', id: 2, questions: [{ type: 'A', name: `pi.${SUFFIX}` }] });
    sock.write(Buffer.concat([q1, q2]));
    const got = await replies;
    const byId = new Map(got.map((p) => [p.id, (p.answers![0] as { data: string }).data]));
    assert.equal(byId.get(1), '100.64.0.5');
    assert.equal(byId.get(2), '100.64.0.6');
    // a length prefix past the query limit: the connection is closed
    const closed = new Promise((r) => sock.once('close', r));
    sock.on('error', () => {});
    sock.write(Buffer.from([0xff, 0xff, 0, 0]));
    await closed;
    await until(() => server.stats().tcpOpen === 0);
  } finally {
    await server.close();
  }
});

test('UDP answers are cut to 512 bytes without EDNS0 (TC=1) and the client asks again over TCP', async () => {
  const { server, host, port } = await startServer();
  try {
    const records = Array.from({ length: 60 }, (_, i) => ({ name: 'many.home.arpa', type: 'A' as const, value: `10.0.${i >> 8}.${i & 0xff}` }));
    server.setZone(buildZone(testMap([], { records })));
    const plain = decode(await server.answer(queryWire('many.home.arpa'), '127.0.0.1', 'udp'));
    assert.equal(plain.flag_tc, true);
    assert.equal(plain.answers?.length, 0);
    const wire = await server.answer(queryWire('many.home.arpa'), '127.0.0.1', 'udp');
    assert.ok(wire!.length <= 512);
    const viaTcp = await server.answer(queryWire('many.home.arpa'), '127.0.0.1', 'tcp');
    assert.equal(decode(viaTcp).answers?.length, 60);
    const r = await queryDns({ host, port }, 'many.home.arpa');
    assert.equal(r.transport, 'tcp');
    assert.equal(r.answers.length, 60);
    assert.ok(server.stats().truncated >= 2);
  } finally {
    await server.close();
  }
});

test('limits: TCP connections past the cap are closed; a source past its rate gets no answer', async () => {
  let now = 0;
  const { server, host, port } = await startServer({ maxTcpConnections: 2, sourceRate: { perSecond: 1, burst: 3, maxKeys: 16 }, clock: () => now });
  try {
    server.setZone(buildZone(testMap([node(5, 'nas')])));
    const conns = [connect({ host, port }), connect({ host, port })];
    for (const c of conns) c.on('error', () => {});
    await until(() => server.stats().tcpOpen === 2);
    const third = connect({ host, port });
    third.on('error', () => {});
    await new Promise((r) => third.once('close', r));
    assert.equal(server.stats().tcpRejected, 1);
    for (const c of conns) c.destroy();
    await until(() => server.stats().tcpOpen === 0);
    const q = queryWire(`nas.${SUFFIX}`);
    for (let i = 0; i < 3; i++) assert.notEqual(await server.answer(q, '127.0.0.9', 'udp'), null);
    assert.equal(await server.answer(q, '127.0.0.9', 'udp'), null, 'burst spent');
    assert.notEqual(await server.answer(q, '127.0.0.10', 'udp'), null, 'another source is not affected');
    now += 1000;
    assert.notEqual(await server.answer(q, '127.0.0.9', 'udp'), null, 'a token back after a second');
    assert.equal(server.stats().rateLimited, 1);
  } finally {
    await server.close();
  }
});

test('an idle TCP connection is closed after the idle timeout', async () => {
  const { server, host, port } = await startServer({ tcpIdleTimeoutMs: 200 });
  try {
    const c = connect({ host, port });
    c.on('error', () => {});
    await new Promise((r) => c.once('close', r));
    await until(() => server.stats().tcpOpen === 0);
  } finally {
    await server.close();
  }
});

test('close() releases the ports', async () => {
  const server = new DnsServer({ upstreams: () => [], allowSource: () => true });
  await server.listen([{ host: '127.0.0.1', port: 0 }]);
  const port = server.addresses()[0]!.port;
  await server.close();
  const again = new DnsServer({ upstreams: () => [], allowSource: () => true });
  await again.listen([{ host: '127.0.0.1', port }]);
  await again.close();
});

test('queryDns: one-line errors for a bad type, a bad name, a resolver that does not answer', async () => {
  await assert.rejects(queryDns({ host: '127.0.0.1', port: 53 }, 'a.example', 'BOGUS'), /unknown record type "BOGUS": use one of A, AAAA/);
  await assert.rejects(queryDns({ host: '127.0.0.1', port: 53 }, 'bad name.example'), /is not a domain name/);
  await assert.rejects(queryDns({ host: 'localhost', port: 53 }, 'a.example'), /resolver "localhost" is not an IP address/);
  const silent = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  try {
    await assert.rejects(queryDns({ host: '127.0.0.1', port: silent.address().port }, 'a.example', 'A', { timeoutMs: 1000 }), (err: Error) => {
      assert.equal(err.name, 'DnsQueryError');
      assert.match(err.message, /no answer from 127\.0\.0\.1:\d+ within 1000 ms: is the daemon up/);
      assert.ok(!err.message.includes('\n'));
      return true;
    });
  } finally {
    silent.close();
  }
});
