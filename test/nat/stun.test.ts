import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bindingRequest, bindingResponse, isStun, parseStun } from '../../src/nat/stun.js';
import { chooseHome, Netchecker } from '../../src/nat/netcheck.js';
import { defaultGateway } from '../../src/nat/portmap.js';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// RFC 5769 §2.2: the sample IPv4 response, XOR-MAPPED-ADDRESS 192.0.2.1:32853, with SOFTWARE, MESSAGE-INTEGRITY and FINGERPRINT
const RFC5769_V4_RESPONSE = Buffer.from(
  '0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643' +
    '000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96',
  'hex',
);
// RFC 5769 §2.1: the sample request (ICE attributes, MESSAGE-INTEGRITY, FINGERPRINT)
const RFC5769_REQUEST = Buffer.from(
  '000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff' +
    '80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf',
  'hex',
);

test('parses the RFC 5769 IPv4 response vector (fingerprint checked)', () => {
  const m = parseStun(RFC5769_V4_RESPONSE);
  assert.deepEqual(m && m.kind === 'response' && m.mapped, { address: '192.0.2.1', port: 32853 });
  const bad = Buffer.from(RFC5769_V4_RESPONSE);
  bad[bad.length - 1]! ^= 1;
  assert.equal(parseStun(bad), null, 'a wrong fingerprint is refused');
  assert.deepEqual(parseStun(RFC5769_REQUEST), { kind: 'request', txid: Buffer.from('b7e7a701bc34d686fa87dfae', 'hex') });
});

test('request and response round-trip, IPv4 and IPv6', () => {
  const { txid, packet } = bindingRequest();
  assert.ok(isStun(packet));
  const req = parseStun(packet);
  assert.deepEqual(req, { kind: 'request', txid });
  for (const from of [
    { address: '7.0.113.12', port: 41641 },
    { address: 'fd00::1:2', port: 1 },
  ]) {
    const res = parseStun(bindingResponse(txid, from));
    assert.deepEqual(res, { kind: 'response', txid, mapped: from });
  }
});

test('fuzz: random and mutated STUN never throws and never yields a forged mapping', () => {
  const good = bindingResponse(randomBytes(12), { address: '1.2.3.4', port: 5 });
  let forged = 0;
  for (let i = 0; i < 10_000; i++) {
    const b = i % 2 ? randomBytes(i % 120) : Buffer.from(good);
    if (i % 2 === 0) b[20 + (i % (b.length - 20))]! ^= 1 << (i % 8);
    const m = parseStun(b);
    // a flipped bit may hide the (optional) fingerprint attribute, but it can never change the mapping
    if (m?.kind === 'response' && (m.mapped.address !== '1.2.3.4' || m.mapped.port !== 5)) forged++;
  }
  assert.equal(forged, 0);
});

test('home region hysteresis: switch only when clearly better', () => {
  assert.equal(chooseHome(null, { a: 30, b: 20 }), 'b');
  assert.equal(chooseHome('a', { a: 30, b: 25 }), 'a', '5 ms better is not enough');
  assert.equal(chooseHome('a', { a: 30, b: 15 }), 'b', 'more than 10 ms and under 2/3');
  assert.equal(chooseHome('a', { a: 100, b: 85 }), 'a', '15 ms better but not under 2/3');
  assert.equal(chooseHome('gone', { b: 40 }), 'b');
  assert.equal(chooseHome('a', {}), 'a');
});

test('default gateway from the kernel routing table', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-route-'));
  const f = join(dir, 'route');
  writeFileSync(
    f,
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\neth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\n',
  );
  assert.equal(defaultGateway(f), '192.168.2.1');
  writeFileSync(f, 'Iface\tDestination\tGateway\n');
  assert.equal(defaultGateway(f), null);
  rmSync(dir, { recursive: true, force: true });
});

test('netcheck hands over the STUN-mapped address before the port-mapping probes end', async () => {
  // a network without a UPnP gateway keeps the port-mapping probe waiting 1.4 s; peers behind NAT
  // cannot reach us until control has the mapped address, so it must not wait for that probe
  let portMapDone: (offered: string[]) => void = () => {};
  const nc: Netchecker = new Netchecker({
    send: (pkt) => {
      const req = parseStun(pkt);
      if (req?.kind === 'request') setImmediate(() => nc.onStun(bindingResponse(req.txid, { address: '7.0.0.9', port: 4242 })));
      return true;
    },
    httpsLatency: async () => null,
    portMapping: () => new Promise<string[]>((resolve) => (portMapDone = resolve)),
  });
  let early: string[] | null = null;
  const report = nc.run([{ region: 'r1', host: '127.0.0.1', port: 3478, url: 'https://127.0.0.1' }], 1000, (m) => (early = m.map((x) => x.mapped)));
  for (const deadline = Date.now() + 10_000; early === null && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(early, ['7.0.0.9:4242'], 'mapped address handed over while port mapping is still probing');
  portMapDone(['NAT-PMP']);
  const r = await report;
  assert.equal(r.ipv4, '7.0.0.9:4242');
  assert.deepEqual(r.portMapping, ['NAT-PMP']);
});

test('netcheck with no STUN answer hands over nothing early and reports no UDP', async () => {
  let early = 0;
  const nc = new Netchecker({ send: () => true, httpsLatency: async () => 42, portMapping: async () => [] });
  const r = await nc.run([{ region: 'r1', host: '127.0.0.1', port: 3478, url: 'https://127.0.0.1' }], 50, () => early++);
  assert.equal(early, 0);
  assert.equal(r.udp, false);
  assert.equal(r.ipv4, null);
  assert.deepEqual(r.regionLatencyMs, { r1: 42 }, 'measured over HTTPS instead');
});
