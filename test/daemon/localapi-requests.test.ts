// Local API request bodies are parsed at the edge (src/daemon/localapi-requests.ts):
// a wrong type or length is a one-line 400 naming the field, never a 500, and an
// unknown field is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalApiServer } from '../../src/daemon/localapi-server.js';
import { parsePingRequest, parsePrefsRequest, parseUpRequest } from '../../src/daemon/localapi-requests.js';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';
import { LOCALAPI } from '../../src/localapi/types.js';
import { BackendDouble, call, socketDir } from './localapi-helpers.js';

const PEM = createSelfSigned('control', ['control.test']).certPem;

test('well-formed requests parse into the typed requests, unchanged', () => {
  const up = {
    loginServer: 'https://control.test:8443',
    authKey: `mskey-${'a'.repeat(12)}-${'b'.repeat(48)}`,
    hostname: 'nas',
    controlCaPem: PEM,
    ifname: 'mesh0',
    port: 0,
    timeoutMs: 30_000,
  };
  assert.deepEqual(parseUpRequest(up), up);
  assert.deepEqual(parseUpRequest({}), {});
  // replicas: --login-server repeated; loginServer is the first
  const replicas = ['https://a.control.test:8443', 'https://b.control.test:8443'];
  assert.deepEqual(parseUpRequest({ loginServers: replicas }), { loginServer: replicas[0], loginServers: replicas });
  assert.deepEqual(parsePrefsRequest({ operator: 'alice', hostname: 'nas' }), { operator: 'alice', hostname: 'nas' });
  // route settings: prefixes canonical; [] withdraws every route
  assert.deepEqual(parseUpRequest({ advertiseRoutes: ['192.168.1.0/24', 'FD00:1::/64'], acceptRoutes: true, snatSubnetRoutes: false }), {
    advertiseRoutes: ['192.168.1.0/24', 'fd00:1::/64'],
    acceptRoutes: true,
    snatSubnetRoutes: false,
  });
  assert.deepEqual(parsePrefsRequest({ advertiseRoutes: [] }), { advertiseRoutes: [] });
  assert.throws(() => parsePrefsRequest({ advertiseRoutes: ['192.168.1.1/24'] }), /advertiseRoutes: 192\.168\.1\.1\/24 has bits set/);
  assert.throws(() => parseUpRequest({ acceptRoutes: 'yes' }), /acceptRoutes/);
  assert.deepEqual(parsePrefsRequest({ operator: null }), { operator: null });
  assert.deepEqual(parsePrefsRequest({ operator: '1000' }), { operator: '1000' });
  assert.deepEqual(parsePingRequest({ peer: 'nas' }), { peer: 'nas', timeoutMs: 5000 });
  assert.deepEqual(parsePingRequest({ peer: '100.64.0.2', timeoutMs: 1e9 }), { peer: '100.64.0.2', timeoutMs: 60_000 });
});

test('wrong types, lengths and unknown fields are a one-line 400 naming the field, never a 500', async () => {
  const backend = new BackendDouble();
  const { sock, done } = socketDir();
  const api = new LocalApiServer(sock, backend, { logger: () => {} });
  await api.start();
  try {
    const cases: [string, string, RegExp][] = [
      [LOCALAPI.up, 'null', /the up request must be a JSON object/],
      [LOCALAPI.up, '[]', /the up request must be a JSON object/],
      [LOCALAPI.up, '"up"', /the up request must be a JSON object/],
      [LOCALAPI.up, '{"port":"41641"}', /port must be an integer from 0 to 65535/],
      [LOCALAPI.up, '{"port":70000}', /port must be an integer from 0 to 65535/],
      [LOCALAPI.up, '{"hostname":5}', /hostname must be a string of 1 to 253 characters/],
      [LOCALAPI.up, JSON.stringify({ hostname: 'x'.repeat(300) }), /hostname must be a string of 1 to 253/],
      [LOCALAPI.up, '{"hostname":"a\\u001b[2Jb"}', /without control characters/],
      [LOCALAPI.up, '{"loginServer":"not a url"}', /is not a URL: pass --login-server https:\/\/HOST:PORT/],
      [LOCALAPI.up, '{"loginServer":"http://control.test"}', /must be an https:\/\/ URL/],
      [LOCALAPI.up, JSON.stringify({ loginServer: `https://${'a'.repeat(3000)}` }), /loginServer must be a string of 1 to 2048/],
      [LOCALAPI.up, '{"controlCaPem":"-----BEGIN CERTIFICATE-----\\nnope\\n-----END CERTIFICATE-----"}', /controlCaPem is not a PEM certificate/],
      [LOCALAPI.up, '{"controlCaPem":{}}', /controlCaPem must be a PEM certificate/],
      [LOCALAPI.up, '{"loginServers":[]}', /loginServers must be a list of 1-8 URLs/],
      [LOCALAPI.up, JSON.stringify({ loginServers: Array.from({ length: 9 }, (_, i) => `https://c${i}.test`) }), /loginServers must be a list of 1-8/],
      [LOCALAPI.up, '{"loginServers":["https://a.test","https://a.test"]}', /a login server is given twice/],
      [LOCALAPI.up, '{"loginServers":["https://a.test","http://b.test"]}', /must be an https:\/\/ URL/],
      [LOCALAPI.up, '{"loginServers":["https://a.test",5]}', /loginServers holds a non-URL/],
      [LOCALAPI.up, '{"loginServer":"https://b.test","loginServers":["https://a.test"]}', /loginServers must start with loginServer/],
      [LOCALAPI.up, '{"ifname":"../../etc"}', /is not an interface name/],
      [LOCALAPI.up, '{"ifname":"averyveryverylongname"}', /ifname must be a string of 1 to 15/],
      [LOCALAPI.up, '{"timeoutMs":"soon"}', /timeoutMs must be a number/],
      [LOCALAPI.up, '{"authKey":["k"]}', /authKey must be a string/],
      [LOCALAPI.up, '{"loginServr":"https://x"}', /unknown field "loginServr" in the up request/],
      [LOCALAPI.up, '{"__proto__":{"x":1}}', /unknown field "__proto__"/],
      [LOCALAPI.prefs, '{"operator":5}', /operator must be a user name or a uid/],
      [LOCALAPI.prefs, '{"operator":"bob; rm -rf /"}', /operator must be a user name or a uid/],
      [LOCALAPI.prefs, '{"hostname":""}', /hostname must be a string of 1 to 253/],
      [LOCALAPI.prefs, '{"wantRunning":true}', /unknown field "wantRunning" in the prefs request/],
      [LOCALAPI.ping, 'null', /the ping request must be a JSON object/],
      [LOCALAPI.ping, '{"peer":7}', /peer must be a string/],
      [LOCALAPI.ping, '{"peer":"nas","timeoutMs":"5s"}', /timeoutMs must be a number/],
      [LOCALAPI.ping, '{"peer":"nas","count":3}', /unknown field "count"/],
      [LOCALAPI.ping, '{"peer":', /request body is not JSON/],
    ];
    for (const [path, body, want] of cases) {
      const r = await call(sock, 'POST', path, body);
      assert.equal(r.status, 400, `${path} ${body.slice(0, 80)}: ${r.status} ${r.body}`);
      const e = (JSON.parse(r.body) as { error: { code: string; message: string } }).error;
      assert.equal(e.code, 'BAD_REQUEST');
      assert.match(e.message, want, `${path} ${body.slice(0, 80)}`);
      assert.doesNotMatch(e.message, /[\n\r\u001b]/, 'one line, no control characters');
    }
    const whois = await call(sock, 'GET', `${LOCALAPI.whois}?ip=${encodeURIComponent('1.2.3.4\n\u001b[2J')}`);
    assert.equal(whois.status, 400, whois.body);
    assert.equal(JSON.parse(whois.body).error.message, 'whois needs an IP address: meshctl whois IP');
    assert.deepEqual(backend.calls, [], 'nothing bad reached the backend');
    const ok = await call(sock, 'POST', LOCALAPI.ping, '{"peer":"nas","timeoutMs":250}');
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(backend.calls, ['ping nas 250']);
  } finally {
    await api.stop();
    done();
  }
});
