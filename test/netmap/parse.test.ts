// The strict parsers for what control sends (src/netmap/parse.ts): bounds on every
// list, canonical text out, and an error that names the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DnsConfig, NetworkMap, NodeView } from '../../src/netmap/types.js';
import {
  MAX_DNS_LABEL_CHARS,
  MAX_DNS_NAME_CHARS,
  MAX_DNS_RECORDS,
  MAX_DNS_ROUTES,
  MAX_DNS_SUFFIX_CHARS,
  MAX_RESOLVERS_PER_ROUTE,
} from '../../src/netmap/dns-names.js';
import {
  MAX_ALLOWED_IPS_PER_PEER,
  MAX_DEVICES,
  MAX_ENDPOINTS_PER_PEER,
  MAX_FILTER_DESTINATIONS,
  MAX_FILTER_RULES,
  MAX_FILTER_SOURCES,
  MAX_PEERS,
  MAX_RELAYS,
  MAX_ROUTES_PER_NODE,
  MapParseError,
  parseMapLine,
  parseNetworkMap,
  parseRegisterResult,
} from '../../src/netmap/parse.js';
import { keyToText } from '../../src/crypto/keys.js';
import { MAX_TAGS_PER_NODE } from '../../src/netmap/identity.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';

const KEY = keyToText(publicKeyOf(generatePrivateKey()));

function view(o: Partial<NodeView> = {}): NodeView {
  return {
    id: 7,
    name: 'alpha',
    nodeKey: KEY,
    discoKey: KEY,
    addresses: ['100.64.0.7', 'fd7a:115c:a1e0::7'],
    allowedIps: ['100.64.0.7/32', 'fd7a:115c:a1e0::7/128'],
    endpoints: ['192.0.2.7:41641'],
    homeRelay: null,
    online: true,
    lastSeen: '2026-12-01T10:00:00.000Z',
    os: 'linux',
    version: '1.0.0',
    keyExpiry: null,
    ephemeral: false,
    ...o,
  };
}

const map = (o: Partial<NetworkMap> = {}): NetworkMap => ({
  self: view(),
  peers: [],
  ipv4Prefix: '100.64.0.0/10',
  ipv6Prefix: 'fd7a:115c:a1e0::/48',
  relays: [],
  ...o,
});

function refuses(json: unknown, field: string, reason: RegExp): void {
  assert.throws(
    () => parseNetworkMap(json),
    (err: unknown) => err instanceof MapParseError && err.field === field && reason.test(err.reason),
    `${field} ${reason}`,
  );
}

test('lists are bounded: peers, endpoints per peer, relays', () => {
  refuses(map({ peers: Array.from({ length: MAX_PEERS + 1 }, () => view()) }), 'peers', /10001 entries, more than the 10000 allowed/);
  refuses(
    map({ peers: [view({ endpoints: Array.from({ length: MAX_ENDPOINTS_PER_PEER + 1 }, (_, i) => `192.0.2.1:${i + 1}`) })] }),
    'peers[0].endpoints',
    /more than the 32/,
  );
  refuses(map({ relays: Array.from({ length: MAX_RELAYS + 1 }, () => ({ code: 'a', url: 'https://r', stunPort: 1 })) }), 'relays', /more than the 64/);
  refuses(
    map({ peers: [view({ allowedIps: Array.from({ length: MAX_ALLOWED_IPS_PER_PEER + 1 }, () => '10.0.0.0/8') })] }),
    'peers[0].allowedIps',
    new RegExp(`more than the ${MAX_ALLOWED_IPS_PER_PEER}`),
  );
});

test('each field is checked for type and form', () => {
  refuses(null, 'map', /expected an object/);
  refuses(map({ peers: [view({ name: 'x'.repeat(254) })] }), 'peers[0].name', /longer than 253/);
  refuses(map({ peers: [view({ name: '' })] }), 'peers[0].name', /empty/);
  refuses(map({ peers: [view({ name: 'a\u202eb' })] }), 'peers[0].name', /control characters/);
  refuses(map({ peers: [view({ version: 'v'.repeat(65) })] }), 'peers[0].version', /longer than 64/);
  refuses(map({ peers: [view({ discoKey: 'AAEC' })] }), 'peers[0].discoKey', /not a 32-byte base64 key: "AAEC"/);
  refuses(map({ peers: [view({ allowedIps: ['10.0.0.0/33'] })] }), 'peers[0].allowedIps[0]', /bits must be 0-32/);
  refuses(map({ peers: [view({ endpoints: ['1.2.3.4:0'] })] }), 'peers[0].endpoints[0]', /port 1-65535/);
  refuses(map({ peers: [view({ endpoints: ['example.com:80'] })] }), 'peers[0].endpoints[0]', /not an IP:port/);
  refuses(map({ peers: [view({ online: 'yes' as unknown as boolean })] }), 'peers[0].online', /true or false/);
  refuses(map({ peers: [view({ id: -1 })] }), 'peers[0].id', /not a node id/);
  refuses(map({ peers: [view({ lastSeen: 'yesterday' })] }), 'peers[0].lastSeen', /ISO 8601/);
  refuses(map({ peers: [view({ homeRelay: 'Home Region' })] }), 'peers[0].homeRelay', /lower-case/);
  refuses(map({ peers: [view({ addresses: [] })] }), 'peers[0].addresses', /no address/);
  refuses(map({ self: view({ addresses: ['100.64.0.7%eth0'] }) }), 'self.addresses[0]', /not an IP address/);
  refuses(map({ ipv6Prefix: '::/0' }), 'ipv6Prefix', /wider than \/16/);
  refuses(map({ relays: [{ code: 'a', url: 'https://user:pw@r', stunPort: 3478 }] }), 'relays[0].url', /HOST:PORT/);
  refuses(map({ relays: [{ code: 'a', url: 'https://r', stunPort: 0 }] }), 'relays[0].stunPort', /1-65535/);
  refuses(map({ relays: [{ code: 'a', url: 'https://r', stunPort: 1, certFingerprint: 'zz' }] }), 'relays[0].certFingerprint', /64 hex/);
});

test('what comes out is canonical text', () => {
  const m = parseNetworkMap(
    map({
      peers: [
        view({
          addresses: ['100.64.0.7', 'FD7A:115C:A1E0:0000:0:0:0:7'],
          allowedIps: ['FD7A:115C:A1E0::7/128'],
          endpoints: ['[2001:DB8::1]:41641'],
          lastSeen: '2026-12-01T10:00:00Z',
        }),
      ],
      relays: [{ code: 'home', url: 'https://Relay.Example:443/', stunPort: 3478, certFingerprint: 'AB'.repeat(32) }],
    }),
  );
  const p = m.peers[0]!;
  assert.deepEqual(p.addresses, ['100.64.0.7', 'fd7a:115c:a1e0::7']);
  assert.deepEqual(p.allowedIps, ['fd7a:115c:a1e0::7/128']);
  assert.deepEqual(p.endpoints, ['[2001:db8::1]:41641']);
  assert.equal(p.lastSeen, '2026-12-01T10:00:00.000Z');
  assert.deepEqual(m.relays[0], { code: 'home', url: 'https://relay.example', stunPort: 3478, certFingerprint: 'ab'.repeat(32) });
  // fields the parser does not know are not carried along
  const extra = parseNetworkMap({ ...map(), evil: 1, self: { ...view(), extra: 'x' } }) as unknown as Record<string, unknown>;
  assert.equal(extra.evil, undefined);
  assert.equal((extra.self as Record<string, unknown>).extra, undefined);
});

test('map stream lines: map, keepalive, gone, and unknown types as null', () => {
  assert.deepEqual(parseMapLine({ type: 'keepalive' }), { type: 'keepalive' });
  assert.deepEqual(parseMapLine({ type: 'gone', reason: 'NODE_UNKNOWN' }), { type: 'gone', reason: 'NODE_UNKNOWN' });
  assert.equal(parseMapLine({ type: 'hello-from-the-future' }), null);
  assert.throws(() => parseMapLine({ type: 'gone', reason: 'BECAUSE' }), /reason: not a known reason/);
  assert.throws(() => parseMapLine('map'), /line: expected an object/);
});

test('register results are parsed the same way', () => {
  const r = parseRegisterResult({
    node: view({ addresses: ['100.64.0.7', 'FD7A:115C:A1E0::7'] }),
    ipv4Prefix: '100.64.0.0/10',
    ipv6Prefix: 'FD7A:115C:A1E0::/48',
  });
  assert.deepEqual(r.node.addresses, ['100.64.0.7', 'fd7a:115c:a1e0::7']);
  assert.equal(r.ipv6Prefix, 'fd7a:115c:a1e0::/48');
  assert.throws(
    () => parseRegisterResult({ node: view({ addresses: ['100.64.0.7; reboot'] }), ipv4Prefix: '100.64.0.0/10', ipv6Prefix: 'fd7a::/48' }),
    /node\.addresses\[0\]: not an IP address/,
  );
  assert.throws(() => parseRegisterResult({ node: view(), ipv4Prefix: '100.64.0.0/10' }), /ipv6Prefix: not an IP prefix/);
});

const dns = (o: Partial<DnsConfig> = {}): DnsConfig => ({
  suffix: 'mesh.internal',
  resolvers: ['100.100.100.100', 'fd7a:115c:a1e0::53'],
  routes: [{ domain: 'corp.example', resolvers: ['10.1.2.3', '10.1.2.4:5353', '[fd00::1]:53', 'fd00::2'] }],
  records: [
    { name: 'nas.home.arpa', type: 'A', value: '100.64.0.5' },
    { name: 'nas.home.arpa', type: 'AAAA', value: 'fd7a:115c:a1e0::5' },
  ],
  ...o,
});

test('dns: optional; a valid one comes out canonical (lowercase names, canonical addresses)', () => {
  assert.equal(parseNetworkMap(map()).dns, undefined);
  assert.deepEqual(parseNetworkMap(map({ dns: dns() })).dns, dns());
  const loud = dns({
    suffix: 'Mesh.INTERNAL',
    resolvers: ['100.100.100.100', 'FD7A:115C:A1E0:0::53'],
    routes: [{ domain: 'Corp.Example', resolvers: ['[FD00:0::1]:53'] }],
    records: [{ name: 'NAS.home.arpa', type: 'AAAA', value: 'FD7A:115C:A1E0::0:5' }],
  });
  assert.deepEqual(parseNetworkMap(map({ dns: loud })).dns, {
    suffix: 'mesh.internal',
    resolvers: ['100.100.100.100', 'fd7a:115c:a1e0::53'],
    routes: [{ domain: 'corp.example', resolvers: ['[fd00::1]:53'] }],
    records: [{ name: 'nas.home.arpa', type: 'AAAA', value: 'fd7a:115c:a1e0::5' }],
  });
});

test('dns: a bad suffix is refused', () => {
  refuses(map({ dns: dns({ suffix: 'internal' }) }), 'dns.suffix', /at least 2 labels/);
  refuses(map({ dns: dns({ suffix: '' }) }), 'dns.suffix', /empty/);
  refuses(map({ dns: dns({ suffix: `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(20)}` }) }), 'dns.suffix', /longer than 189/);
  refuses(map({ dns: dns({ suffix: `${'a'.repeat(64)}.internal` }) }), 'dns.suffix', /label longer than 63/);
  // the longest suffix leaves room for the longest node name (one 63-character label) within 253 characters
  const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(MAX_DNS_SUFFIX_CHARS - 128)}`;
  assert.equal(longest.length, MAX_DNS_SUFFIX_CHARS);
  assert.equal(parseNetworkMap(map({ dns: dns({ suffix: longest }) })).dns?.suffix, longest);
  assert.ok(`${'n'.repeat(MAX_DNS_LABEL_CHARS)}.${longest}`.length <= MAX_DNS_NAME_CHARS);
  refuses(map({ dns: dns({ suffix: `x${longest}` }) }), 'dns.suffix', /longer than 189/);
  refuses(map({ dns: dns({ suffix: 'mesh.123' }) }), 'dns.suffix', /all digits/);
  refuses(map({ dns: dns({ suffix: '-mesh.internal' }) }), 'dns.suffix', /inner hyphens/);
  refuses(map({ dns: dns({ suffix: 'mesh.\u212Aelvin' }) }), 'dns.suffix', /lowercase letters/);
});

test('dns: injection attempts in names are refused whole', () => {
  for (const bad of [
    'nas home.arpa',
    'nas\n.home.arpa',
    'nas.home.arpa\nnameserver 6.6.6.6',
    '.nas.home.arpa',
    'nas.home.arpa.',
    'nas..home',
    'nas\u0000.x',
    'a_b.example',
    '*.example',
  ]) {
    refuses(map({ dns: dns({ records: [{ name: bad, type: 'A', value: '100.64.0.5' }] }) }), 'dns.records[0].name', /not a DNS name/);
    refuses(map({ dns: dns({ routes: [{ domain: bad, resolvers: ['10.0.0.1'] }] }) }), 'dns.routes[0].domain', /not a DNS name/);
  }
  refuses(map({ dns: dns({ suffix: 'mesh.internal\nsearch evil.example' }) }), 'dns.suffix', /not a DNS name/);
  refuses(
    map({ dns: dns({ routes: [{ domain: 'corp.example', resolvers: ['10.0.0.1 # x'] }] }) }),
    'dns.routes[0].resolvers[0]',
    /not an IP address or IP:port/,
  );
  refuses(map({ dns: dns({ routes: [{ domain: 'corp.example', resolvers: ['10.0.0.1\n'] }] }) }), 'dns.routes[0].resolvers[0]', /not an IP address or IP:port/);
});

test('dns: lists are bounded by their named constants; duplicates and empty lists refused', () => {
  const routes = Array.from({ length: MAX_DNS_ROUTES + 1 }, (_, i) => ({ domain: `d${i}.example`, resolvers: ['10.0.0.1'] }));
  refuses(map({ dns: dns({ routes }) }), 'dns.routes', /65 entries, more than the 64 allowed/);
  const records = Array.from({ length: MAX_DNS_RECORDS + 1 }, (_, i) => ({ name: `r${i}.example`, type: 'A' as const, value: '10.0.0.1' }));
  refuses(map({ dns: dns({ records }) }), 'dns.records', /more than the 1024 allowed/);
  const resolvers = Array.from({ length: MAX_RESOLVERS_PER_ROUTE + 1 }, (_, i) => `10.0.0.${i + 1}`);
  refuses(map({ dns: dns({ routes: [{ domain: 'corp.example', resolvers }] }) }), 'dns.routes[0].resolvers', /more than the 4 allowed/);
  refuses(map({ dns: dns({ routes: [{ domain: 'corp.example', resolvers: [] }] }) }), 'dns.routes[0].resolvers', /no resolver/);
  const twice = [
    { domain: 'corp.example', resolvers: ['10.0.0.1'] },
    { domain: 'CORP.example', resolvers: ['10.0.0.2'] },
  ];
  refuses(map({ dns: dns({ routes: twice }) }), 'dns.routes[1].domain', /has two routes/);
  refuses(map({ dns: dns({ resolvers: [] }) }), 'dns.resolvers', /no resolver address/);
  refuses(map({ dns: dns({ resolvers: ['100.100.100.100', '100.100.100.101'] }) }), 'dns.resolvers', /one address per family/);
});

test('dns: record values must match their type; resolver addresses must lie in the mesh prefixes', () => {
  refuses(map({ dns: dns({ records: [{ name: 'nas.home.arpa', type: 'A', value: 'fd00::5' }] }) }), 'dns.records[0].value', /needs an IPv4 address/);
  refuses(map({ dns: dns({ records: [{ name: 'nas.home.arpa', type: 'AAAA', value: '10.0.0.5' }] }) }), 'dns.records[0].value', /needs an IPv6 address/);
  refuses(map({ dns: dns({ records: [{ name: 'nas.home.arpa', type: 'MX' as 'A', value: '10.0.0.5' }] }) }), 'dns.records[0].type', /"A" or "AAAA"/);
  refuses(map({ dns: dns({ records: [{ name: 'nas.home.arpa', type: 'A', value: '10.0.0.5:53' }] }) }), 'dns.records[0].value', /not an IP address/);
  refuses(map({ dns: dns({ resolvers: ['8.8.8.8'] }) }), 'dns.resolvers[0]', /outside the mesh prefixes/);
  refuses(map({ dns: dns({ resolvers: ['100.100.100.100', 'fd00::53'] }) }), 'dns.resolvers[1]', /outside the mesh prefixes/);
  refuses(map({ dns: 'mesh.internal' as unknown as DnsConfig }), 'dns', /expected an object/);
});

const net = (i: number): string => `10.${i >> 8}.${i & 255}.0/24`;

test('routes: approved, primary and exit fields come out canonical', () => {
  const peer = view({
    allowedIps: ['100.64.0.7/32', 'fd7a:115c:a1e0::7/128', '192.168.1.0/24'],
    routes: ['192.168.1.0/24', 'FD00:1::/64'],
    primaryRoutes: ['192.168.1.0/24'],
    exitNode: true,
  });
  const m = parseNetworkMap(map({ peers: [peer], self: view({ id: 1, name: 'me', advertised: { routes: ['10.1.0.0/16'], exitNode: false } }) }));
  assert.deepEqual(m.peers[0]!.routes, ['192.168.1.0/24', 'fd00:1::/64']);
  assert.deepEqual(m.peers[0]!.primaryRoutes, ['192.168.1.0/24']);
  assert.equal(m.peers[0]!.exitNode, true);
  assert.deepEqual(m.self.advertised, { routes: ['10.1.0.0/16'], exitNode: false });
  // absent stays absent (an older control server)
  const plain = parseNetworkMap(map({ peers: [view()] }));
  assert.equal('routes' in plain.peers[0]!, false);
  assert.equal('devices' in plain, false);
});

test('routes: bounded, canonical, never the default route, the mesh or special blocks', () => {
  refuses(
    map({ peers: [view({ routes: Array.from({ length: MAX_ROUTES_PER_NODE + 1 }, (_, i) => net(i)) })] }),
    'peers[0].routes',
    new RegExp(`more than the ${MAX_ROUTES_PER_NODE}`),
  );
  refuses(map({ peers: [view({ routes: ['192.168.1.1/24'] })] }), 'peers[0].routes[0]', /host bits set: the prefix is 192\.168\.1\.0\/24/);
  refuses(map({ peers: [view({ routes: ['0.0.0.0/0'] })] }), 'peers[0].routes[0]', /default route/);
  refuses(map({ peers: [view({ routes: ['100.64.0.0/16'] })] }), 'peers[0].routes[0]', /overlaps the mesh prefix 100\.64\.0\.0\/10/);
  refuses(map({ peers: [view({ routes: ['fd7a:115c:a1e0:5::/64'] })] }), 'peers[0].routes[0]', /overlaps the mesh prefix/);
  refuses(map({ peers: [view({ routes: ['127.0.0.0/8'] })] }), 'peers[0].routes[0]', /loopback/);
  refuses(map({ peers: [view({ routes: ['fe80::/64'] })] }), 'peers[0].routes[0]', /link-local/);
  refuses(map({ peers: [view({ routes: ['239.0.0.0/8'] })] }), 'peers[0].routes[0]', /multicast/);
  refuses(map({ peers: [view({ routes: ['10.0.0.0/8', '10.0.0.0/8'] })] }), 'peers[0].routes', /listed twice/);
  refuses(map({ peers: [view({ routes: '10.0.0.0/8' as unknown as string[] })] }), 'peers[0].routes', /expected a list/);
  refuses(map({ peers: [view({ exitNode: 1 as unknown as boolean })] }), 'peers[0].exitNode', /true or false/);
  // the default route never comes from control in allowedIps: the client adds it for the exit node it chose
  refuses(map({ peers: [view({ allowedIps: ['::/0'] })] }), 'peers[0].allowedIps[0]', /all traffic/);
});

test('routes: primary routes are approved routes and in allowedIps; advertised is the self view only', () => {
  refuses(map({ peers: [view({ routes: [], primaryRoutes: ['10.0.0.0/8'] })] }), 'peers[0].primaryRoutes[0]', /not among the node's routes/);
  refuses(map({ peers: [view({ routes: ['10.0.0.0/8'], primaryRoutes: ['10.0.0.0/8'] })] }), 'peers[0].primaryRoutes[0]', /not in the node's allowedIps/);
  refuses(map({ peers: [view({ advertised: { routes: [], exitNode: true } })] }), 'peers[0].advertised', /own view/);
  refuses(map({ self: view({ advertised: { routes: ['10.0.0.1/8'], exitNode: true } }) }), 'self.advertised.routes[0]', /host bits/);
  refuses(
    map({ self: view({ advertised: { routes: [] } as unknown as { routes: string[]; exitNode: boolean } }) }),
    'self.advertised.exitNode',
    /true or false/,
  );
});

test('devices: parsed strictly; key only in the gateway own map; names unique against nodes', () => {
  const dev = { id: 1, name: 'Phone', addresses: ['100.64.9.1', 'FD7A:115C:A1E0::6440:901'], gateway: 'alpha' };
  const self = view({ id: 1, name: 'alpha' });
  const m = parseNetworkMap(map({ self, devices: [{ ...dev, publicKey: KEY }] }));
  assert.deepEqual(m.devices, [{ id: 1, name: 'phone', addresses: ['100.64.9.1', 'fd7a:115c:a1e0::6440:901'], gateway: 'alpha', publicKey: KEY }]);
  // another node's map: the key must not be there
  const other = view({ id: 2, name: 'beta' });
  refuses(map({ self: other, peers: [self], devices: [{ ...dev, publicKey: KEY }] }), 'devices[0].publicKey', /gateway's own map/);
  assert.deepEqual(parseNetworkMap(map({ self: other, peers: [self], devices: [dev] })).devices![0]!.gateway, 'alpha');
  refuses(map({ self, devices: [{ ...dev, gateway: 'nobody' }] }), 'devices[0].gateway', /not a node of this map/);
  refuses(map({ self, devices: [{ ...dev, addresses: ['10.0.0.1'] }] }), 'devices[0].addresses[0]', /outside the mesh prefixes/);
  refuses(map({ self, devices: [{ ...dev, addresses: ['100.64.9.1', '100.64.9.2'] }] }), 'devices[0].addresses', /one address per family/);
  refuses(map({ self, devices: [{ ...dev, addresses: [] }] }), 'devices[0].addresses', /no address/);
  refuses(map({ self, devices: [{ ...dev, name: 'a.b' }] }), 'devices[0].name', /one DNS label/);
  refuses(map({ self, devices: [{ ...dev, name: 'a\nb' }] }), 'devices[0].name', /not a DNS name/);
  refuses(map({ self, devices: [{ ...dev, name: 'alpha' }] }), 'devices[0].name', /taken/);
  refuses(map({ self, devices: [dev, { ...dev, id: 2 }] }), 'devices[1].name', /taken/);
  refuses(map({ self, devices: [{ ...dev, publicKey: 'AAEC' }] }), 'devices[0].publicKey', /32-byte/);
  refuses(map({ self, devices: Array.from({ length: MAX_DEVICES + 1 }, (_, i) => ({ ...dev, id: i, name: `d${i}` })) }), 'devices', /more than the 256/);
});

test('owner and tags: plain user names and tag:NAME, bounded, exclusive', () => {
  assert.equal(parseNetworkMap(map({ self: view({ user: 'alice' }) })).self.user, 'alice');
  assert.deepEqual(parseNetworkMap(map({ peers: [view({ id: 8, tags: ['tag:nas', 'tag:server'] })] })).peers[0]!.tags, ['tag:nas', 'tag:server']);
  refuses(map({ self: view({ user: 'Alice\n' }) }), 'self.user', /user name/);
  refuses(map({ self: view({ user: 'a:b' }) }), 'self.user', /user name/);
  refuses(map({ self: view({ user: '' }) }), 'self.user', /1-64/);
  refuses(map({ self: view({ tags: ['server'] }) }), 'self.tags[0]', /tag:/);
  refuses(map({ self: view({ tags: ['tag:a', 'tag:a'] }) }), 'self.tags', /twice/);
  refuses(map({ self: view({ user: 'alice', tags: ['tag:a'] }) }), 'self.tags', /no owner/);
  const many = Array.from({ length: MAX_TAGS_PER_NODE + 1 }, (_, i) => `tag:t${i}`);
  refuses(map({ self: view({ tags: many }) }), 'self.tags', new RegExp(`more than the ${MAX_TAGS_PER_NODE}`));
});

test('packetFilter: absent stays absent; a valid one comes out canonical', () => {
  assert.equal('packetFilter' in parseNetworkMap(map()), false);
  assert.deepEqual(parseNetworkMap(map({ packetFilter: [] })).packetFilter, []);
  const m = parseNetworkMap({
    ...map(),
    packetFilter: [{ srcIps: ['100.64.0.1/32', 'FD7A:115C:A1E0::1/128'], dstPorts: [{ ip: '100.64.0.7/32', first: 22, last: 22 }], protocols: [6, 17] }],
  });
  assert.deepEqual(m.packetFilter, [
    { srcIps: ['100.64.0.1/32', 'fd7a:115c:a1e0::1/128'], dstPorts: [{ ip: '100.64.0.7/32', first: 22, last: 22 }], protocols: [6, 17] },
  ]);
});

test('packetFilter: prefixes, port ranges and protocols are checked; lists bounded by their named constants', () => {
  const rule = (o: Record<string, unknown> = {}): Record<string, unknown> => ({
    srcIps: ['100.64.0.0/10'],
    dstPorts: [{ ip: '100.64.0.7/32', first: 0, last: 65535 }],
    protocols: [],
    ...o,
  });
  const withRules = (...rules: unknown[]): unknown => ({ ...map(), packetFilter: rules });
  assert.equal(parseNetworkMap(withRules(rule())).packetFilter!.length, 1);
  refuses(withRules(rule({ srcIps: ['100.64.0.1'] })), 'packetFilter[0].srcIps[0]', /no \/bits/);
  refuses(withRules(rule({ srcIps: ['100.64.0.1/10'] })), 'packetFilter[0].srcIps[0]', /host bits/);
  refuses(withRules(rule({ srcIps: ['*'] })), 'packetFilter[0].srcIps[0]', /prefix/);
  refuses(withRules(rule({ srcIps: [] })), 'packetFilter[0].srcIps', /no source/);
  refuses(withRules(rule({ dstPorts: [] })), 'packetFilter[0].dstPorts', /no destination/);
  refuses(withRules(rule({ dstPorts: [{ ip: '100.64.0.7/32', first: 443, last: 22 }] })), 'packetFilter[0].dstPorts[0]', /first > last/);
  refuses(withRules(rule({ dstPorts: [{ ip: '100.64.0.7/32', first: -1, last: 22 }] })), 'packetFilter[0].dstPorts[0].first', /0-65535/);
  refuses(withRules(rule({ dstPorts: [{ ip: '100.64.0.7/32', first: 1, last: 65536 }] })), 'packetFilter[0].dstPorts[0].last', /0-65535/);
  refuses(withRules(rule({ dstPorts: [{ ip: '100.64.0.7/32', first: 1.5, last: 2 }] })), 'packetFilter[0].dstPorts[0].first', /0-65535/);
  refuses(withRules(rule({ dstPorts: [{ ip: '10.0.0.1/8', first: 1, last: 2 }] })), 'packetFilter[0].dstPorts[0].ip', /host bits/);
  refuses(withRules(rule({ protocols: [256] })), 'packetFilter[0].protocols[0]', /0-255/);
  refuses(withRules(rule({ protocols: ['tcp'] })), 'packetFilter[0].protocols[0]', /0-255/);
  refuses(withRules(rule({ protocols: [6, 6] })), 'packetFilter[0].protocols', /twice/);
  refuses({ ...map(), packetFilter: {} }, 'packetFilter', /expected a list/);
  const rules = Array.from({ length: MAX_FILTER_RULES + 1 }, () => rule());
  refuses(withRules(...rules), 'packetFilter', new RegExp(`more than the ${MAX_FILTER_RULES}`));
  const srcs = Array.from({ length: MAX_FILTER_SOURCES + 1 }, () => '100.64.0.1/32');
  refuses(withRules(rule({ srcIps: srcs })), 'packetFilter[0].srcIps', new RegExp(`more than the ${MAX_FILTER_SOURCES}`));
  const dsts = Array.from({ length: MAX_FILTER_DESTINATIONS + 1 }, () => ({ ip: '100.64.0.7/32', first: 1, last: 1 }));
  refuses(withRules(rule({ dstPorts: dsts })), 'packetFilter[0].dstPorts', new RegExp(`more than the ${MAX_FILTER_DESTINATIONS}`));
});

test('relays over IPv6: an IPv6 literal URL and a relay’s ipv6 address, canonical; a wrong family or a zone refused', () => {
  const m = parseNetworkMap(map({ relays: [{ code: 'a', url: 'https://[2001:DB8::3]:443', stunPort: 3478, ipv6: '2001:DB8:0::4' }] }));
  assert.deepEqual(m.relays[0], { code: 'a', url: 'https://[2001:db8::3]', stunPort: 3478, ipv6: '2001:db8::4' });
  refuses(map({ relays: [{ code: 'a', url: 'https://r', stunPort: 1, ipv6: '7.0.113.3' }] }), 'relays[0].ipv6', /IPv6 address/);
  refuses(map({ relays: [{ code: 'a', url: 'https://r', stunPort: 1, ipv6: 'fe80::1%eth0' }] }), 'relays[0].ipv6', /not an IP address/);
  // peers' IPv6 endpoints are canonical too (RFC 5952: lower case, longest zero run as ::)
  const p = parseNetworkMap(map({ peers: [view({ id: 2, endpoints: ['[2001:DB8:0:0::2]:41641', '7.0.113.11:41641'] })] }));
  assert.deepEqual(p.peers[0]!.endpoints, ['[2001:db8::2]:41641', '7.0.113.11:41641']);
});
