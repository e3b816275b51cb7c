import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatGetResponse, parseCidr, parseEndpoint, parseSetRequest, UAPI_EINVAL, UAPI_EPROTO } from '../../src/engine/device/uapi.js';
import { UapiError } from '../../src/engine/device/uapi-types.js';

const K1 = 'a'.repeat(64);
const K2 = 'b'.repeat(64);

test('parses a full set request in order', () => {
  const r = parseSetRequest(
    [
      `private_key=${K1}`,
      'listen_port=51820',
      'fwmark=0',
      'replace_peers=true',
      `public_key=${K2}`,
      `preshared_key=${'0'.repeat(64)}`,
      'endpoint=[fd00::1]:1234',
      'persistent_keepalive_interval=25',
      'replace_allowed_ips=true',
      'allowed_ip=10.0.0.7/24',
      'allowed_ip=fd00::/64',
      'protocol_version=1',
      `public_key=${K1}`,
      'remove=true',
    ].join('\n'),
  );
  assert.equal(r.privateKey!.toString('hex'), K1);
  assert.equal(r.listenPort, 51820);
  assert.equal(r.replacePeers, true);
  assert.equal(r.peers.length, 2);
  const p = r.peers[0]!;
  assert.deepEqual(p.endpoint, { address: 'fd00::1', port: 1234 });
  assert.equal(p.persistentKeepaliveSeconds, 25);
  assert.deepEqual(p.allowedIps, [
    { address: '10.0.0.0', bits: 24, family: 4 },
    { address: 'fd00::', bits: 64, family: 6 },
  ]);
  assert.equal(r.peers[1]!.remove, true);
});

const BAD: [string, string, number][] = [
  ['no equals sign', 'garbage', UAPI_EPROTO],
  ['unknown device key', 'bogus=1', UAPI_EINVAL],
  ['peer key before public_key', 'endpoint=1.2.3.4:5', UAPI_EINVAL],
  ['short key', 'private_key=abcd', UAPI_EINVAL],
  ['uppercase hex key', `private_key=${'A'.repeat(64)}`, UAPI_EINVAL],
  ['port out of range', 'listen_port=65536', UAPI_EINVAL],
  ['bad endpoint', `public_key=${K1}\nendpoint=nohost`, UAPI_EINVAL],
  ['bad allowed ip', `public_key=${K1}\nallowed_ip=10.0.0.0/33`, UAPI_EINVAL],
  ['bad protocol version', `public_key=${K1}\nprotocol_version=2`, UAPI_EINVAL],
  ['unknown peer key', `public_key=${K1}\nbogus=1`, UAPI_EINVAL],
  ['negative keepalive', `public_key=${K1}\npersistent_keepalive_interval=-1`, UAPI_EINVAL],
];
for (const [name, body, errno] of BAD) {
  test(`refuses ${name} with errno ${errno}`, () => {
    assert.throws(
      () => parseSetRequest(body),
      (e: unknown) => e instanceof UapiError && e.errno === errno,
    );
  });
}

test('endpoint and prefix parsing normalise', () => {
  assert.deepEqual(parseEndpoint('192.0.2.1:51820'), { address: '192.0.2.1', port: 51820 });
  assert.deepEqual(parseEndpoint('[2001:DB8:0:0::1]:1'), { address: '2001:db8::1', port: 1 });
  assert.deepEqual(parseCidr('10.1.2.3'), { address: '10.1.2.3', bits: 32, family: 4 });
});

test('formats a get answer in wireguard-go’s key order', () => {
  const text = formatGetResponse({
    privateKey: Buffer.from(K1, 'hex'),
    listenPort: 51820,
    fwmark: 0,
    peers: [
      {
        publicKey: Buffer.from(K2, 'hex'),
        presharedKey: null,
        endpoint: { address: 'fd00::1', port: 5 },
        persistentKeepaliveSeconds: 0,
        lastHandshakeTimeSec: 1,
        lastHandshakeTimeNsec: 2,
        rxBytes: 3n,
        txBytes: 4n,
        allowedIps: [{ address: '10.0.0.0', bits: 24, family: 4 }],
      },
    ],
  });
  assert.equal(
    text,
    [
      `private_key=${K1}`,
      'listen_port=51820',
      `public_key=${K2}`,
      `preshared_key=${'0'.repeat(64)}`,
      'protocol_version=1',
      'endpoint=[fd00::1]:5',
      'last_handshake_time_sec=1',
      'last_handshake_time_nsec=2',
      'tx_bytes=4',
      'rx_bytes=3',
      'persistent_keepalive_interval=0',
      'allowed_ip=10.0.0.0/24',
      '',
    ].join('\n'),
  );
});
