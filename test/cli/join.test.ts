// Join strings (src/cli/join.ts): what `control authkey create --join` makes
// comes back whole from the parser, and every defect of a pasted string is one
// line naming it, never quoting the string (it holds the auth key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeJoin, parseJoin, resolveJoin, MAX_JOIN_STRING_CHARS, JoinStringError } from '../../src/cli/join.js';
import { certPin, parsePin, pinText } from '../../src/crypto/spki-pin.js';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';
import { CliError } from '../../src/cli/errors.js';

const KEY = 'mskey-0123456789ab-' + 'cd'.repeat(24);
const PIN = pinText(createHash('sha256').update('a key').digest());
const good = { urls: ['https://ctl.example.net:8443', 'https://[fd00::1]:8443'], pin: PIN, authKey: KEY };

/** Rebuilds a string from a body with a correct checksum, so the field checks (not the checksum) are what refuse it. */
function withBody(body: Buffer): string {
  const sum = createHash('sha256').update(body).digest().subarray(0, 4);
  return 'mesh1:' + Buffer.concat([body, sum]).toString('base64url');
}
const bodyOf = (s: string): Buffer => {
  const raw = Buffer.from(s.slice(6), 'base64url');
  return raw.subarray(0, raw.length - 4);
};

test('a join string round-trips, is copy-paste safe and short enough for a QR code', () => {
  const s = encodeJoin(good);
  assert.match(s, /^mesh1:[A-Za-z0-9_-]+$/);
  assert.ok(s.length < 256, `${s.length} characters`);
  assert.deepEqual(parseJoin(s), good);
  assert.deepEqual(parseJoin(`  ${s}\n`), good, 'surrounding white space (a file, a paste) is fine');
  // URLs are kept in canonical origin form
  assert.deepEqual(parseJoin(encodeJoin({ ...good, urls: ['https://CTL.example.net:443/'] })).urls, ['https://ctl.example.net']);
});

test('each defect is refused with one line that never quotes the string or the key', () => {
  const s = encodeJoin(good);
  const body = bodyOf(s);
  const keyAt = 33;
  const urlsAt = keyAt + KEY.length;
  const cases: [string, string, RegExp][] = [
    ['empty', '', /not a join string/],
    ['another scheme', 'mskey-1:abc', /not a join string/],
    ['a newer format', 'mesh2:' + s.slice(6), /format 2, this meshctl reads format 1/],
    ['a space inside', s.slice(0, 40) + ' ' + s.slice(40), /not base64url/],
    ['padding', s + '=', /not base64url/],
    ['too long', 'mesh1:' + 'A'.repeat(MAX_JOIN_STRING_CHARS), /longer than/],
    ['cut short', s.slice(0, 30), /cut short|damaged/],
    ['cut by one character', s.slice(0, -1), /cut short|damaged/],
    ['one character changed', s.slice(0, 50) + (s[50] === 'A' ? 'B' : 'A') + s.slice(51), /damaged/],
    ['key length 0', withBody(Buffer.concat([body.subarray(0, 32), Buffer.of(0), body.subarray(keyAt)])), /auth key is 0 bytes/],
    ['key with a control character', withBody(Buffer.concat([body.subarray(0, keyAt), Buffer.from('\x1b'), body.subarray(keyAt + 1)])), /control/],
    ['no URLs', withBody(Buffer.concat([body.subarray(0, urlsAt), Buffer.of(0)])), /names 0 control URLs/],
    ['five URLs', withBody(Buffer.concat([body.subarray(0, urlsAt), Buffer.of(5), body.subarray(urlsAt + 1)])), /names 5 control URLs/],
    ['an http URL', withBody(Buffer.concat([body.subarray(0, urlsAt), Buffer.of(1, 14), Buffer.from('http://ctl:80/')])), /not https/],
    ['a URL with a path', withBody(Buffer.concat([body.subarray(0, urlsAt), Buffer.of(1, 17), Buffer.from('https://ctl/x?y=1')])), /path, query/],
    [
      'a URL twice',
      withBody(Buffer.concat([body.subarray(0, urlsAt), Buffer.of(2, 11), Buffer.from('https://ctl'), Buffer.of(11), Buffer.from('https://ctl')])),
      /twice/,
    ],
    ['a URL cut', withBody(Buffer.concat([body.subarray(0, urlsAt), Buffer.of(1, 40), Buffer.from('https://ctl')])), /ends inside the control URL 1/],
    ['trailing bytes', withBody(Buffer.concat([body, Buffer.of(0)])), /1 bytes after its last field/],
  ];
  for (const [what, text, re] of cases) {
    assert.throws(
      () => parseJoin(text),
      (err: Error) => {
        assert.ok(err instanceof JoinStringError, what);
        assert.match(err.message, re, what);
        assert.doesNotMatch(err.message, /\n/, what);
        assert.ok(!err.message.includes(KEY) && !err.message.includes(KEY.slice(6, 30)), `${what}: the key is not in the message`);
        assert.ok(!err.message.includes(s.slice(52, 112)), `${what}: the string is not in the message`);
        return true;
      },
      what,
    );
  }
});

test('the encoder refuses what the parser would refuse', () => {
  assert.throws(() => encodeJoin({ ...good, urls: [] }), /1-4 control URLs/);
  assert.throws(() => encodeJoin({ ...good, urls: ['http://x'] }), /not an https/);
  assert.throws(() => encodeJoin({ ...good, authKey: 'has space' }), /printable ASCII/);
  assert.throws(() => encodeJoin({ ...good, pin: 'sha256//short' }), /not a sha256/);
});

test("a certificate's pin is the SHA-256 of its public key, as openssl computes it, and survives a new certificate on the same key", () => {
  const a = createSelfSigned('ctl', ['127.0.0.1']);
  const pin = certPin(a.certPem);
  assert.ok(parsePin(pin));
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-pin-'));
  try {
    writeFileSync(join(dir, 'cert.pem'), a.certPem);
    writeFileSync(join(dir, 'key.pem'), a.keyPem);
    const der = execFileSync('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-pubkey', '-noout']);
    const spki = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: der });
    assert.equal(pin, 'sha256//' + createHash('sha256').update(spki).digest('base64'));
    // a renewed certificate (new serial, new dates, new signature) over the same key: same pin
    const renewed = execFileSync('openssl', ['req', '-new', '-x509', '-key', join(dir, 'key.pem'), '-subj', '/CN=renewed', '-days', '1'], {
      encoding: 'utf8',
    });
    assert.notEqual(renewed, a.certPem);
    assert.equal(certPin(renewed), pin);
    assert.notEqual(certPin(createSelfSigned('ctl', ['127.0.0.1']).certPem), pin, 'another key, another pin');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--join, --join-file and MESHCTL_JOIN: the first given wins; a bad one names its source, not its text', () => {
  const s = encodeJoin(good);
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-join-'));
  try {
    const f = join(dir, 'join');
    writeFileSync(f, `${s}\n`, { mode: 0o600 });
    assert.deepEqual(resolveJoin(undefined, f, {}), good);
    assert.deepEqual(resolveJoin(undefined, undefined, { MESHCTL_JOIN: s }), good);
    assert.deepEqual(resolveJoin(s, undefined, { MESHCTL_JOIN: 'junk' }), good);
    assert.equal(resolveJoin(undefined, undefined, {}), undefined);
    assert.throws(() => resolveJoin(s, f, {}), /--join and --join-file go alone/);
    assert.throws(
      () => resolveJoin(undefined, undefined, { MESHCTL_JOIN: s.slice(0, -3) }),
      (e: Error) => e instanceof CliError && /^MESHCTL_JOIN: the join string/.test(e.message) && !e.message.includes(s.slice(52, 112)),
    );
    writeFileSync(f, 'x'.repeat(MAX_JOIN_STRING_CHARS + 100));
    assert.throws(() => resolveJoin(undefined, f, {}), /is longer than \d+ bytes: it is not a join string file/);
    assert.throws(() => resolveJoin(undefined, join(dir, 'none'), {}), /--join-file: cannot read .*ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
