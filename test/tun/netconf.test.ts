// Interface configuration on the real kernel, inside namespaces these tests
// make (the bodies run in fixtures/netconf-probe.js and
// fixtures/configure-injection-probe.js there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rootSkipReason } from '../helpers/root.js';
import { Lab } from '../helpers/netns.js';
import { packageRoot } from '../../src/cli/version.js';

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
}
interface Link {
  ifname: string;
  addr_info: AddrInfo[];
}
interface Route {
  dst: string;
  dev?: string;
  type?: string;
  protocol?: string;
  scope?: string;
}

async function probe(fixture: string): Promise<Record<string, unknown>> {
  const lab = new Lab();
  try {
    const ns = await lab.netns('nc');
    const r = await lab.exec(ns, [process.execPath, join(packageRoot(), 'dist', 'test', 'tun', 'fixtures', fixture)], 30_000);
    assert.equal(r.code, 0, `probe failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  } finally {
    await lab.cleanup();
  }
}

const ROOT = { skip: rootSkipReason() };

test('MTU and link by ioctl, addresses and routes by rtnetlink: applied, repeatable, routes held elsewhere left alone, failures named', ROOT, async () => {
  const res = (await probe('netconf-probe.js')) as {
    name: string;
    link: string;
    addr: Link[];
    route: Route[];
    errors: Record<string, string> & { otherRoutes: { error: string; v4: Route[]; v6: Route[]; otherAddr: Link[] } };
    withExtra: Link[];
  };
  const { name } = res;
  assert.match(res.link, /mtu 1280/);
  assert.match(res.link, /<[^>]*\bUP\b/);
  const addrs = res.addr[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
  assert.ok(addrs.includes('10.90.0.1/32'), addrs.join());
  assert.ok(addrs.includes('fd00:90::1/128'), addrs.join());
  assert.equal(addrs.filter((a) => a === '10.90.0.1/32').length, 1, 'the repeat replaced the address, not added a second');
  const extra = res.withExtra[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
  assert.ok(extra.includes('100.100.100.100/32') && extra.includes('fd00:90::53/128'), extra.join());
  // no duplicate address detection: a tentative address would refuse the resolver's bind() for a while
  const six = res.withExtra[0]!.addr_info.find((a) => a.local === 'fd00:90::53') as { nodad?: boolean; tentative?: boolean } | undefined;
  assert.deepEqual({ nodad: six?.nodad, tentative: six?.tentative }, { nodad: true, tentative: undefined });
  assert.ok(!addrs.includes('100.100.100.100/32') && !addrs.includes('fd00:90::53/128'), `removed again: ${addrs.join()}`);
  const v4 = res.route.find((r) => r.dst === '10.90.0.0/16');
  const v6 = res.route.find((r) => r.dst === 'fd00:90::/48');
  // what `ip route add <prefix> dev <if>` makes
  assert.deepEqual(v4 && { type: v4.type, protocol: v4.protocol, scope: v4.scope }, { type: 'unicast', protocol: 'boot', scope: 'link' });
  assert.deepEqual(v6 && { type: v6.type, protocol: v6.protocol }, { type: 'unicast', protocol: 'boot' });
  assert.match(res.errors.noDevice!, /^TUN_CONFIG_FAILED: setting MTU 1280 on nosuch0: no such interface/);
  assert.match(res.errors.tinyMtu!, /^TUN_CONFIG_FAILED: setting MTU 40 on mcnc\d+: the kernel refused the value/);
  assert.equal(res.errors.hostBits, `TUN_CONFIG_FAILED: route 10.91.0.1/16 dev ${name}: the address has bits set after /16; give the network address`);
  assert.equal(res.errors.noDeviceConfig, 'TUN_CONFIG_FAILED: addresses and routes on nosuch0: no such interface');
  // the kernel's errno text (and its extended-ack reason), one line, naming the route; the second route was tried too
  assert.match(res.errors.linkDown!, new RegExp(`^TUN_CONFIG_FAILED: route 10\\.93\\.0\\.0/16 dev ${name}d: Network is down( \\([^)]*\\))? \\(and 1 more\\)$`));
  const other = res.errors.otherRoutes;
  assert.equal(other.error, 'no error');
  assert.deepEqual(
    other.v4.map((r) => r.dev),
    [name],
    'the first interface keeps its IPv4 route',
  );
  assert.deepEqual(
    other.v6.map((r) => r.dev),
    [name],
    'the first interface keeps its IPv6 route',
  );
  const otherAddrs = other.otherAddr[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
  assert.ok(otherAddrs.includes('10.90.0.2/32') && otherAddrs.includes('fd00:90::2/128'), 'the second interface still got its addresses');
});

test('a map whose addresses or prefixes carry a second command is refused and runs nothing', ROOT, async () => {
  type Result = { ifname: string; errors: Record<string, string>; afterAttacks: string[]; valid: string; afterValid: string[] };
  const res = (await probe('configure-injection-probe.js')) as Result;
  const injected = res.afterAttacks.filter((a) => a.startsWith('10.99.99.'));
  assert.deepEqual(injected, [], 'no injected command ran');
  for (const [what, err] of Object.entries(res.errors)) {
    assert.match(err, new RegExp(`^TUN_CONFIG_FAILED: refusing to configure ${res.ifname}: (this node's address|mesh prefix) \\d is bad \\(not an IP`), what);
    assert.doesNotMatch(err, /\n/, `${what}: one line`);
  }
  assert.deepEqual(
    res.afterAttacks.filter((a) => a.endsWith(` ${res.ifname}`) && !a.startsWith('fe80:')),
    [],
    'a refused map configures nothing',
  );
  assert.equal(res.valid, 'no error');
  assert.ok(res.afterValid.includes(`100.64.0.9/32 ${res.ifname}`) && res.afterValid.includes(`fd7a:115c:a1e0::9/128 ${res.ifname}`), res.afterValid.join());
});
