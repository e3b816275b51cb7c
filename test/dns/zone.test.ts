// buildZone: mesh names, reverse names, extra records and split routes from a
// map, and what it leaves out of a hostile one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildZone, MESH_TTL_S } from '../../src/dns/zone.js';
import { parseReverseName, reverseName } from '../../src/dns/names.js';
import { parseIp } from '../../src/util/netaddr.js';
import { node, SUFFIX, testMap } from './fixtures.js';

const data = (z: ReturnType<typeof buildZone>, name: string, type: string): string[] | string => z.lookup(name, type)?.answers.map((a) => a.data) ?? 'forward';

test('A, AAAA and PTR for self and every peer, offline ones too', () => {
  const z = buildZone(testMap([node(5, 'nas', { online: false }), node(6, 'pi')]));
  assert.deepEqual(data(z, `nas.${SUFFIX}`, 'A'), ['100.64.0.5']);
  assert.deepEqual(data(z, `nas.${SUFFIX}`, 'AAAA'), ['fd7a:115c:a1e0::5']);
  assert.deepEqual(data(z, `self.${SUFFIX}`, 'A'), ['100.64.0.1']);
  assert.deepEqual(data(z, '5.0.64.100.in-addr.arpa', 'PTR'), [`nas.${SUFFIX}`]);
  assert.deepEqual(data(z, reverseName(parseIp('fd7a:115c:a1e0::6')), 'PTR'), [`pi.${SUFFIX}`]);
  assert.equal(z.lookup(`nas.${SUFFIX}`, 'A')?.answers[0]?.ttl, MESH_TTL_S);
  assert.equal(z.names, 9, '3 forward names and 6 reverse names');
});

test('devices on stock WireGuard have names and reverse names like nodes', () => {
  const z = buildZone({ ...testMap([node(6, 'pi')]), devices: [{ id: 1, name: 'phone', addresses: ['100.64.0.9', 'fd7a:115c:a1e0::9'], gateway: 'pi' }] });
  assert.deepEqual(data(z, `phone.${SUFFIX}`, 'A'), ['100.64.0.9']);
  assert.deepEqual(data(z, `phone.${SUFFIX}`, 'AAAA'), ['fd7a:115c:a1e0::9']);
  assert.deepEqual(data(z, '9.0.64.100.in-addr.arpa', 'PTR'), [`phone.${SUFFIX}`]);
});

test('unknown names under the suffix are NXDOMAIN, known names of another type NODATA with the SOA', () => {
  const z = buildZone(testMap([node(5, 'nas')]));
  const nx = z.lookup(`nope.${SUFFIX}`, 'A')!;
  assert.equal(nx.rcode, 'NXDOMAIN');
  assert.equal(nx.soa?.zone, SUFFIX);
  const nodata = z.lookup(`nas.${SUFFIX}`, 'MX')!;
  assert.equal(nodata.rcode, 'NOERROR');
  assert.deepEqual(nodata.answers, []);
  assert.equal(z.lookup(SUFFIX, 'A')?.rcode, 'NOERROR', 'the apex exists');
  assert.equal(z.lookup(SUFFIX, 'SOA')?.soaIsAnswer, true);
  assert.equal(z.lookup('example.com', 'A'), null, 'other names are forwarded');
});

test('the mesh reverse zones are answered here, NXDOMAIN for unknown addresses; other reverse names are forwarded', () => {
  const z = buildZone(testMap([node(5, 'nas')]));
  assert.equal(z.lookup('9.9.64.100.in-addr.arpa', 'PTR')?.rcode, 'NXDOMAIN');
  assert.equal(z.lookup('9.9.127.100.in-addr.arpa', 'PTR')?.rcode, 'NXDOMAIN', 'the top of 100.64.0.0/10');
  assert.equal(z.lookup('0.64.100.in-addr.arpa', 'PTR')?.rcode, 'NOERROR', 'an empty non-terminal above a PTR');
  assert.equal(z.lookup('9.9.128.100.in-addr.arpa', 'PTR'), null, '100.128.0.0 is outside the prefix');
  assert.equal(z.lookup('1.1.168.192.in-addr.arpa', 'PTR'), null);
  assert.equal(z.lookup(reverseName(parseIp('fd7a:115c:a1e0::99')), 'PTR')?.rcode, 'NXDOMAIN');
  assert.equal(z.lookup(reverseName(parseIp('2001:db8::1')), 'PTR'), null);
  assert.deepEqual(parseReverseName('64.100.in-addr.arpa'), { family: 4, bytes: Buffer.from([100, 64, 0, 0]), bits: 16 });
  assert.equal(parseReverseName('064.100.in-addr.arpa'), null);
});

test('extra records and split routes: longest suffix wins, routes inside the suffix are ignored', () => {
  const z = buildZone(
    testMap([], {
      records: [
        { name: 'nas.home.arpa', type: 'A', value: '100.64.0.5' },
        { name: `files.${SUFFIX}`, type: 'AAAA', value: 'fd7a:115c:a1e0::5' },
        { name: 'bad name', type: 'A', value: '1.2.3.4' },
        { name: 'x.example', type: 'A', value: '::1' },
      ],
      routes: [
        { domain: 'corp.example', resolvers: ['10.1.2.3'] },
        { domain: 'lab.corp.example', resolvers: ['10.9.9.9:5353', '[fd00::1]:53'] },
        { domain: `x.${SUFFIX}`, resolvers: ['10.0.0.1'] },
      ],
    }),
  );
  assert.deepEqual(data(z, 'nas.home.arpa', 'A'), ['100.64.0.5']);
  assert.deepEqual(data(z, 'nas.home.arpa', 'AAAA'), [], 'the record name exists: NODATA');
  assert.equal(z.lookup('other.home.arpa', 'A'), null);
  assert.deepEqual(data(z, `files.${SUFFIX}`, 'AAAA'), ['fd7a:115c:a1e0::5']);
  assert.deepEqual(
    z.routeFor('www.corp.example')?.map((e) => e.text),
    ['10.1.2.3:53'],
  );
  assert.deepEqual(
    z.routeFor('a.lab.corp.example')?.map((e) => e.text),
    ['10.9.9.9:5353', '[fd00::1]:53'],
  );
  assert.equal(z.routeFor('corp.example.org'), null);
  assert.equal(z.routeFor(`a.x.${SUFFIX}`), null);
  assert.equal(z.problems.length, 3, z.problems.join('\n'));
});

test('a hostile map: bad names and addresses are left out and reported, never served', () => {
  const z = buildZone(testMap([node(5, 'evil.name'), node(6, 'ok', { addresses: ['100.64.0.6', 'not-an-ip'] }), node(7, 'UPPER')]));
  assert.equal(z.lookup(`evil.name.${SUFFIX}`, 'A')?.rcode, 'NXDOMAIN');
  assert.deepEqual(data(z, `ok.${SUFFIX}`, 'A'), ['100.64.0.6']);
  assert.deepEqual(data(z, `upper.${SUFFIX}`, 'A'), ['100.64.0.7']);
  assert.equal(z.problems.length, 2, z.problems.join('\n'));
  const none = buildZone({ ...testMap([]), dns: undefined });
  assert.equal(none.suffix, null);
  assert.equal(none.lookup(`self.${SUFFIX}`, 'A'), null);
});

test('a 1000-name zone', () => {
  const peers = Array.from({ length: 1000 }, (_, i) => node(i + 2, `host${i + 2}`));
  const z = buildZone(testMap(peers));
  assert.deepEqual(data(z, `host1001.${SUFFIX}`, 'A'), ['100.64.3.233']);
  assert.deepEqual(data(z, '233.3.64.100.in-addr.arpa', 'PTR'), [`host1001.${SUFFIX}`]);
});
