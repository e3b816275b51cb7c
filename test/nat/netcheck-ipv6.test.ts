// IPv6 in NAT discovery: the STUN codec's IPv6 XOR-MAPPED-ADDRESS (family 2,
// RFC 5769's sample IPv6 response), and netcheck asking a relay's STUN server
// over IPv6 on loopback, whose answer becomes a canonical [v6]:port endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { bindingResponse, parseStun } from '../../src/nat/stun.js';
import { Netchecker, type StunTarget } from '../../src/nat/netcheck.js';
import { StunServer } from '../../src/relay/stun-server.js';

/** RFC 5769 section 2.2: a binding success response carrying an IPv6 XOR-MAPPED-ADDRESS, a MESSAGE-INTEGRITY and a FINGERPRINT. */
const RFC5769_IPV6_RESPONSE = Buffer.from(
  '010100482112a442b7e7a701bc34d686fa87dfae' +
    '8022000b7465737420766563746f7220' +
    '002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9' +
    '00080014a382954e4be67bf11784c97c8292c275bfe3ed41' +
    '80280004c8fb0b4c',
  'hex',
);

test('STUN: the RFC 5769 IPv6 response parses to its address and port (family 2, XOR with cookie and transaction id)', () => {
  const m = parseStun(RFC5769_IPV6_RESPONSE);
  assert.ok(m && m.kind === 'response');
  assert.equal(m.txid.toString('hex'), 'b7e7a701bc34d686fa87dfae');
  assert.deepEqual(m.mapped, { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
});

test('STUN: an IPv6 answer is family 2, 20 bytes, XORed, and round-trips', () => {
  const txid = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');
  const pkt = bindingResponse(txid, { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
  // header, then XOR-MAPPED-ADDRESS: type 0x0020, length 20, family 2, the same bytes as RFC 5769's
  assert.equal(pkt.readUInt16BE(20), 0x0020);
  assert.equal(pkt.readUInt16BE(22), 20);
  assert.equal(pkt[25], 2);
  assert.equal(pkt.subarray(26, 44).toString('hex'), 'a1470113a9faa5d3f179bc25f4b5bed2b9d9');
  const m = parseStun(pkt);
  assert.ok(m && m.kind === 'response');
  assert.deepEqual(m.mapped, { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
  // a family 2 attribute of IPv4's length is refused (no answer rather than a wrong address)
  const bad = Buffer.from(pkt);
  bad[25] = 1;
  assert.equal(parseStun(bad), null);
});

/** A node's two sockets (IPv4 and IPv6, as the engine binds) on loopback, feeding STUN answers to a Netchecker. */
async function node(opts: { ipv6Usable?: boolean } = {}) {
  const v4 = dgram.createSocket('udp4');
  const v6 = dgram.createSocket({ type: 'udp6', ipv6Only: true });
  await new Promise<void>((r) => v4.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => v6.bind(0, '::1', r));
  let sent6 = 0;
  const nc = new Netchecker({
    send: (pkt, ep) => {
      const v6addr = ep.address.includes(':');
      if (v6addr) sent6++;
      (v6addr ? v6 : v4).send(pkt, ep.port, ep.address);
      return true;
    },
    httpsLatency: async () => null,
    ...(opts.ipv6Usable === undefined ? {} : { ipv6Usable: () => opts.ipv6Usable! }),
  });
  v4.on('message', (m) => nc.onStun(m));
  v6.on('message', (m) => nc.onStun(m));
  return { nc, port4: v4.address().port, port6: v6.address().port, sent6: () => sent6, close: () => (v4.close(), v6.close()) };
}

test('netcheck asks the relay over IPv6 too: the node’s IPv6 endpoint is reported, bracketed and canonical', async () => {
  const stun = new StunServer('::', 0); // dual-stack, as `relay serve --listen [::]:443` runs it
  await stun.start();
  const n = await node();
  try {
    const target: StunTarget = { region: 'r', host: '127.0.0.1', port: stun.port, url: 'https://127.0.0.1:1', host6: '::1' };
    const seen: string[][] = [];
    const report = await n.nc.run([target], 2000, (m) => seen.push(m.map((x) => x.mapped)));
    assert.equal(report.ipv4, `127.0.0.1:${n.port4}`);
    assert.equal(report.ipv6, `[::1]:${n.port6}`);
    assert.deepEqual(report.mapped.map((m) => m.server).sort(), [`127.0.0.1:${stun.port}`, `[::1]:${stun.port}`].sort());
    assert.equal(report.mappingVariesByDestIP, null, 'one IPv4 server: NAT behaviour unknown (IPv6 answers do not count)');
    assert.ok(seen.flat().includes(`[::1]:${n.port6}`), 'the IPv6 endpoint reaches onMapped, which reports it to control');
  } finally {
    n.close();
    await stun.stop();
  }
});

test('netcheck skips IPv6 STUN on a node with no IPv6 address', async () => {
  const stun = new StunServer('::', 0);
  await stun.start();
  const n = await node({ ipv6Usable: false });
  try {
    const report = await n.nc.run([{ region: 'r', host: '127.0.0.1', port: stun.port, url: 'https://127.0.0.1:1', host6: '::1' }], 2000);
    assert.equal(report.ipv6, null);
    assert.equal(n.sent6(), 0);
    assert.equal(report.ipv4, `127.0.0.1:${n.port4}`);
  } finally {
    n.close();
    await stun.stop();
  }
});
