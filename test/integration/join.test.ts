// Joining with one string, end to end in namespaces: the control server's
// `authkey create --join` makes it, a node joins with `up --join-file` (the
// first URL dead, the second a real control server whose self-signed
// certificate it trusts by the pin alone), another through $MESHCTL_JOIN; a
// string with another server's key is refused naming both keys; and neither
// the string nor the key shows in the daemon's log, its status, or any
// process's command line or environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Status } from '../../src/localapi/types.js';
import { rootSkipReason } from '../helpers/root.js';
import { MeshLab, type MeshNode } from '../helpers/mesh.js';
import { encodeJoin, parseJoin } from '../../src/cli/join.js';
import { certPin } from '../../src/crypto/spki-pin.js';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';

const skip = rootSkipReason();

/**
 * Characters of a join string that encode its auth key: after `mesh1:` the first 43 characters are the
 * public-key hash, which is no secret and is shown (as base64) in errors and state.
 */
const secretPart = (s: string): string => s.slice(6 + 46, 6 + 46 + 60);

/** Every process whose command line or environment holds `secret` (this test's own process excepted). */
function processesHolding(secret: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    for (const f of ['cmdline', 'environ']) {
      try {
        if (readFileSync(`/proc/${pid}/${f}`).includes(secret)) found.push(`${pid}/${f}`);
      } catch {
        // gone, or not ours to read
      }
    }
  }
  return found;
}

test('up --join: one string, the server trusted by its key pin; a wrong pin refused; the secret kept out of logs and status', {
  skip,
  timeout: 180_000,
}, async (t) => {
  const m = new MeshLab();
  try {
    await m.build(2);
    await m.startControl();
    const [n1, n2] = m.nodes as [MeshNode, MeshNode];
    const dead = `https://${m.controlIp}:9`;
    const made = await m.meshctl([
      'control',
      'authkey',
      'create',
      '--reusable',
      '--join',
      '--control-url',
      dead,
      '--control-url',
      m.url,
      '--state-dir',
      m.controlDir,
    ]);
    assert.equal(made.code, 0, made.stderr);
    const joinString = made.stdout.trim().split('\n').pop()!;
    const info = parseJoin(joinString);
    assert.deepEqual(info.urls, [dead, m.url]);
    assert.equal(info.pin, certPin(readFileSync(join(m.controlDir, 'tls', 'cert.pem'))));
    assert.match(made.stderr, new RegExp(`control server key: ${info.pin.replace(/[+/]/g, '\\$&')}`));
    assert.doesNotMatch(made.stdout, /█|▀|▄/, 'no QR code off a terminal');

    await t.test('on a terminal, a QR code of the string comes first and the string is still the last line', async () => {
      const { sh } = await import('../helpers/netns.js');
      const { packageRoot } = await import('../../src/cli/version.js');
      const cmd = [
        process.execPath,
        join(packageRoot(), 'bin', 'meshctl'),
        'control',
        'authkey',
        'create',
        '--join',
        '--control-url',
        m.url,
        '--state-dir',
        m.controlDir,
      ];
      // script(1) (util-linux, in every Debian) runs it on a pseudo-terminal; the words are plain paths and flags
      const r = await sh('script', ['-qec', cmd.join(' '), '/dev/null'], 30_000);
      assert.equal(r.code, 0, r.stdout);
      assert.match(r.stdout, /[█▀▄]/, 'a QR code');
      const last = r.stdout.trim().split(/\r?\n/).pop()!;
      assert.match(last, /^mesh1:[A-Za-z0-9_-]+$/);
      assert.deepEqual(parseJoin(last).urls, [m.url]);
    });

    await t.test('--join-file: the dead URL is skipped, the control server is trusted by its pin alone', async () => {
      const f = join(m.dir, 'join.txt');
      writeFileSync(f, `${joinString}\n`, { mode: 0o600 });
      const r = await n1.run(['up', '--join-file', f, '--hostname', n1.name, '--state-dir', n1.stateDir, '--timeout', '20s']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^node1 is up: 100\./);
    });

    await t.test('a string with another server key is refused, naming both keys and the fix', async () => {
      const wrongPin = certPin(createSelfSigned('x', ['127.0.0.1']).certPem);
      const wrong = encodeJoin({ ...info, urls: [m.url], pin: wrongPin });
      const r = await n2.run(['up', '--hostname', n2.name, '--state-dir', n2.stateDir, '--timeout', '20s'], 30_000, { env: { MESHCTL_JOIN: wrong } });
      assert.notEqual(r.code, 0);
      // the progress lines, then the error as the last line
      const line = r.stderr.trim().split('\n').pop()!;
      assert.ok(line.includes(`expected ${wrongPin}, got ${info.pin}`), line);
      assert.match(line, /get a new join string from `meshctl control authkey create --join`/);
      assert.ok(!line.includes(info.authKey) && !line.includes(secretPart(wrong)), 'the secret is not in the error');
    });

    await t.test('$MESHCTL_JOIN: joins; the string and key are in no log, status, command line or environment', async () => {
      const r = await n2.run(['up', '--hostname', n2.name, '--state-dir', n2.stateDir, '--timeout', '20s'], 30_000, { env: { MESHCTL_JOIN: joinString } });
      assert.equal(r.code, 0, r.stderr);
      for (const n of [n1, n2]) {
        const s = await n.run(['status', '--json']);
        assert.equal((JSON.parse(s.stdout) as Status).backendState, 'Running');
        const texts = {
          log: readFileSync(join(n.stateDir, 'daemon.log'), 'utf8'),
          status: s.stdout,
          state: readFileSync(join(n.stateDir, 'state.json'), 'utf8'),
        };
        for (const [what, text] of Object.entries(texts)) {
          assert.ok(!text.includes(info.authKey), `${n.name} ${what} holds the auth key`);
          assert.ok(!text.includes(secretPart(joinString)), `${n.name} ${what} holds the join string`);
        }
        // the daemon keeps the pin (it trusts the server by it from now on), never the key
        assert.ok(texts.state.includes(info.pin));
      }
      assert.deepEqual(processesHolding(info.authKey), []);
      assert.deepEqual(processesHolding(secretPart(joinString)), []);
    });
  } finally {
    await m.cleanup();
  }
});
