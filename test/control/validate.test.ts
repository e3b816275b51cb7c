// Every field of every request is parsed at the edge: wrong input is a 400
// BAD_REQUEST with a one-line message naming the field, never a 500 and never
// silently stored. Driven over real HTTPS against a server on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { keyToText } from '../../src/crypto/keys.js';
import { discoKey, harness, Node, registerBody } from './helpers.js';
import { MAX_NODE_ENDPOINTS } from '../../src/netmap/types.js';

const P = '/meshctl/v1';

function assertBadRequest(r: { status: number; body: Record<string, unknown> }, pattern: RegExp, what: string): void {
  const err = r.body.error as { code?: string; message?: string } | undefined;
  assert.equal(r.status, 400, `${what}: status ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(err?.code, 'BAD_REQUEST', what);
  assert.ok(err?.message && !err.message.includes('\n'), `${what}: one-line message`);
  assert.match(err!.message!, pattern, what);
}

test('a number where the auth key belongs is a 400 naming the field, not a 500', async () => {
  const h = await harness();
  try {
    const n = new Node(h.server.publicKey!);
    const r = await h.post(`${P}/register`, n.seal('register', { ...registerBody(undefined), authKey: 12345 }));
    assertBadRequest(r, /authKey/, 'numeric authKey');
  } finally {
    await h.close();
  }
});

test('a table of malformed requests: each refused with 400 and a message naming what is wrong', async () => {
  const h = await harness();
  try {
    const n = new Node(h.server.publicKey!);
    const reg = (fields: Record<string, unknown>) => n.seal('register', { ...registerBody(undefined), ...fields });
    const key31 = Buffer.alloc(31, 1).toString('base64');
    const cases: [string, string, unknown, RegExp][] = [
      // the sealed envelope
      ['body is JSON null', 'register', 'null', /request must be a JSON object/],
      ['body is a list', 'register', '[1]', /request must be a JSON object/],
      ['nodeKey a number', 'register', { nodeKey: 5, box: 'AAAA' }, /nodeKey/],
      ['nodeKey of 31 bytes', 'register', { nodeKey: key31, box: 'AAAA' }, /nodeKey/],
      ['box a number', 'register', { nodeKey: n.key, box: 5 }, /box/],
      ['box not base64', 'register', { nodeKey: n.key, box: '!!!!' }, /box/],
      ['box too short', 'register', { nodeKey: n.key, box: 'AAAA' }, /too short/],
      // the sealed header
      ['sealed body not JSON', 'register', n.sealRaw('not json'), /not JSON/],
      ['sealed body a list', 'register', n.sealRaw('[]'), /sealed body must be a JSON object/],
      ['unknown op', 'register', n.sealRaw({ ...registerBody(undefined), op: 'delete', tsMs: Date.now(), nonce: 'abcdefgh12' }), /op "delete" is unknown/],
      ['op a number', 'register', n.sealRaw({ op: 7, tsMs: Date.now(), nonce: 'abcdefgh12' }), /op "number" is unknown/],
      ['tsMs a string', 'register', n.sealRaw({ ...registerBody(undefined), op: 'register', tsMs: 'now', nonce: 'abcdefgh12' }), /tsMs/],
      ['nonce a number', 'register', n.sealRaw({ ...registerBody(undefined), op: 'register', tsMs: Date.now(), nonce: 5 }), /nonce/],
      ['nonce with a newline', 'register', n.sealRaw({ ...registerBody(undefined), op: 'register', tsMs: Date.now(), nonce: 'abcdefgh\n' }), /nonce/],
      // register
      ['hostname a number', 'register', reg({ hostname: 5 }), /register\.hostname/],
      ['hostname missing', 'register', reg({ hostname: undefined }), /register\.hostname/],
      ['hostname with an escape sequence', 'register', reg({ hostname: 'a\u001b[2Jb' }), /register\.hostname .*printable/],
      ['hostname of 300 characters', 'register', reg({ hostname: 'h'.repeat(300) }), /register\.hostname .*1-255/],
      ['os too long', 'register', reg({ os: 'o'.repeat(33) }), /register\.os/],
      ['version null', 'register', reg({ version: null }), /register\.version/],
      ['authKey an object', 'register', reg({ authKey: { k: 1 } }), /register\.authKey/],
      ['discoKey too short', 'register', reg({ discoKey: 'abc' }), /register\.discoKey .*32-byte key/],
      ['discoKey of 31 bytes', 'register', reg({ discoKey: key31 }), /register\.discoKey/],
      ['endpoints a string', 'register', reg({ endpoints: '1.2.3.4:5' }), /register\.endpoints must be a list/],
      ['endpoint without port', 'register', reg({ endpoints: ['1.2.3.4'] }), /register\.endpoints\[0\]/],
      ['endpoint port 0', 'register', reg({ endpoints: ['1.2.3.4:7', '1.2.3.4:0'] }), /register\.endpoints\[1\]/],
      ['endpoint a number', 'register', reg({ endpoints: [5] }), /register\.endpoints\[0\]/],
      ['endpoint with a zone', 'register', reg({ endpoints: ['[fe80::1%eth0]:5'] }), /register\.endpoints\[0\]/],
      ['33 endpoints', 'register', reg({ endpoints: Array.from({ length: MAX_NODE_ENDPOINTS + 1 }, (_, i) => `10.0.0.${i + 1}:1`) }), /at most 32/],
      // map
      ['map without discoKey', 'map', n.seal('map', { endpoints: [] }), /map\.discoKey/],
      ['map endpoints junk', 'map', n.seal('map', { endpoints: ['junk'], discoKey: discoKey() }), /map\.endpoints\[0\]/],
      // endpoints
      ['homeRelay a number', 'endpoints', n.seal('endpoints', { endpoints: [], homeRelay: 5 }), /homeRelay/],
      ['homeRelay upper case', 'endpoints', n.seal('endpoints', { endpoints: [], homeRelay: 'HOME' }), /homeRelay/],
      ['homeRelay too long', 'endpoints', n.seal('endpoints', { endpoints: [], homeRelay: 'r'.repeat(33) }), /homeRelay/],
      ['endpoints missing', 'endpoints', n.seal('endpoints', {}), /endpoints\.endpoints must be a list/],
      // unknown path
      ['unknown path', 'nothing', n.seal('register', registerBody(undefined)), /no POST/],
    ];
    for (const [what, op, body, pattern] of cases) assertBadRequest(await h.post(`${P}/${op}`, body), pattern, what);

    // GET endpoints: verify keeps its contract (200 known / 404 unknown) and refuses a malformed key
    const unknown = keyToText(randomBytes(32));
    assert.deepEqual(await h.get(`${P}/verify?nodeKey=${encodeURIComponent(unknown)}`), { status: 404, body: { known: false } });
    assertBadRequest(await h.get(`${P}/verify?nodeKey=abc`), /nodeKey must be a base64 32-byte key/, 'verify: short key');
    assertBadRequest(await h.get(`${P}/verify`), /exactly one parameter/, 'verify: no query');
    assertBadRequest(await h.get(`${P}/verify?nodeKey=${encodeURIComponent(unknown)}&x=1`), /exactly one parameter/, 'verify: extra parameter');
    assertBadRequest(await h.get(`${P}/key?x=1`), /no GET/, 'key: a query');
    const k = await h.get(`${P}/key`);
    assert.equal(k.status, 200);
    assert.equal(k.body.publicKey, keyToText(h.server.publicKey!));
  } finally {
    await h.close();
  }
});

test('valid input is stored in canonical form: endpoints normalised and de-duplicated, home relay kept', async () => {
  const h = await harness();
  try {
    const authKey = await h.authKey();
    const n = new Node(h.server.publicKey!);
    const r = await h.post(
      `${P}/register`,
      n.seal('register', { ...registerBody(authKey, 'box'), endpoints: ['10.0.0.1:41641', '[FD00:0:0::1]:7', '10.0.0.1:41641'] }),
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual((r.body.node as { endpoints: string[] }).endpoints, ['10.0.0.1:41641', '[fd00::1]:7']);
    const e = await h.post(`${P}/endpoints`, n.seal('endpoints', { endpoints: ['192.0.2.1:9'], homeRelay: 'home-1' }));
    assert.equal(e.status, 200, JSON.stringify(e.body));
    const verify = await h.get(`${P}/verify?nodeKey=${encodeURIComponent(n.key)}`);
    assert.deepEqual(verify, { status: 200, body: { known: true } });
  } finally {
    await h.close();
  }
});
