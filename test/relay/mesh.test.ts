// Relay mesh links: the peer's certificate is pinned before the mesh key is
// sent; a wrong key is refused; the key comes from a file (mode 600) or the
// environment, never argv; the lab's relays get it by file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';
import { packageRoot } from '../../src/cli/version.js';
import { relayServeArgs, writeRelayMeshKey } from '../../src/lab/lab.js';
import { loadMeshKey, MESH_KEY_ENV, meshKeyDigest, meshKeyMatches } from '../../src/relay/mesh-key.js';
import { parseMeshPeer } from '../../src/relay/mesh-peer.js';
import { client, relay, until } from './harness.js';

const bin = join(packageRoot(), 'bin', 'meshctl');

test('a mesh peer whose certificate does not match the pin is refused before it hears the key', async () => {
  const meshKey = randomBytes(32).toString('hex');
  const R1 = await relay({ meshKey });
  const pinnedWrong = await relay({ meshKey, meshWith: [{ url: R1.url, fingerprint: 'ab'.repeat(32) }] });
  const unpinned = await relay({ meshKey, meshWith: [{ url: R1.url }] });
  const right = await relay({ meshKey, meshWith: [{ url: R1.url, fingerprint: R1.r.fingerprint }] });
  try {
    await until(() => right.r.meshLinks[0]!.connected, 3000, 'the pinned link');
    await until(() => /fingerprint/.test(pinnedWrong.r.meshLinks[0]!.lastError ?? ''), 3000, 'the wrong pin refused');
    // a self-signed certificate and no pin: the CA check refuses it
    await until(() => /certificate/i.test(unpinned.r.meshLinks[0]!.lastError ?? ''), 3000, 'the unpinned link refused');
    assert.equal(pinnedWrong.r.meshLinks[0]!.connected, false);
    assert.equal(unpinned.r.meshLinks[0]!.connected, false);
    // R1 never saw a ClientInfo from either: no refused or accepted mesh handshakes beyond the right one
    assert.equal(R1.r.stats.refused.unauthorized, 0);
    assert.equal(R1.r.stats.refused.handshake, 0);
  } finally {
    await right.close();
    await unpinned.close();
    await pinnedWrong.close();
    await R1.close();
  }
});

test('a wrong mesh key is refused, and so is any mesh key at a relay that has none', async () => {
  const R = await relay({ meshKey: randomBytes(32).toString('hex') });
  const plain = await relay();
  const wrong = client(R.url, { fingerprint: R.r.fingerprint, meshKey: randomBytes(32).toString('hex') });
  const shorter = client(R.url, { fingerprint: R.r.fingerprint, meshKey: 'x' });
  const none = client(plain.url, { fingerprint: plain.r.fingerprint, meshKey: randomBytes(32).toString('hex') });
  try {
    await until(() => /wrong mesh key/.test(wrong.c.lastError ?? '') && /wrong mesh key/.test(shorter.c.lastError ?? ''), 3000, 'wrong keys refused');
    await until(() => /no mesh key/.test(none.c.lastError ?? ''), 3000, 'refused without a mesh key');
    assert.equal(R.r.stats.refused.unauthorized, 2);
    // digests of equal length, so keys of any length compare without throwing
    assert.equal(meshKeyMatches('a', meshKeyDigest('a'.repeat(64))), false);
    assert.equal(meshKeyMatches({ toString: () => 'k' }, meshKeyDigest('k')), false);
    assert.equal(meshKeyMatches('k'.repeat(40), meshKeyDigest('k'.repeat(40))), true);
  } finally {
    wrong.c.stop();
    shorter.c.stop();
    none.c.stop();
    await plain.close();
    await R.close();
  }
});

test('the mesh key comes from a file only its owner reads, or the environment; never argv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-meshkey-'));
  try {
    const key = randomBytes(32).toString('hex');
    assert.throws(
      () => loadMeshKey(key, {}),
      (e: Error) =>
        /no secret on the command line/.test(e.message) && /file:PATH/.test(e.message) && e.message.includes(MESH_KEY_ENV) && !e.message.includes(key),
    );
    const f = join(dir, 'mesh.key');
    writeFileSync(f, `${key}\n`, { mode: 0o644 });
    chmodSync(f, 0o644);
    assert.throws(() => loadMeshKey(`file:${f}`, {}), /other users can read the file: chmod 600/);
    chmodSync(f, 0o600);
    assert.equal(loadMeshKey(`file:${f}`, {}), key);
    writeFileSync(f, 'short\n', { mode: 0o600 });
    assert.throws(() => loadMeshKey(`file:${f}`, {}), /printable characters/);
    assert.throws(() => loadMeshKey(`file:${join(dir, 'none')}`, {}), /no such file/);
    assert.throws(() => loadMeshKey(`file:${dir}`, {}), /not a key file/);
    const env: NodeJS.ProcessEnv = { [MESH_KEY_ENV]: key };
    assert.equal(loadMeshKey(undefined, env), key);
    assert.equal(env[MESH_KEY_ENV], undefined, 'the variable is not passed on');
    assert.equal(loadMeshKey(undefined, {}), undefined);
    // --mesh-with is typed at the edge
    assert.deepEqual(parseMeshPeer(`https://10.0.0.4:8443?fingerprint=${'AB:'.repeat(31)}AB`), { url: 'https://10.0.0.4:8443', fingerprint: 'ab'.repeat(32) });
    assert.deepEqual(parseMeshPeer('https://relay.example:443'), { url: 'https://relay.example' });
    for (const bad of [
      'http://10.0.0.4:443',
      'https://10.0.0.4:443/x',
      'https://u:p@10.0.0.4',
      'https://10.0.0.4?fingerprint=zz',
      'https://10.0.0.4?fp=1',
      'relay',
    ]) {
      assert.throws(() => parseMeshPeer(bad), /--mesh-with/, bad);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('meshctl relay serve refuses a mesh key on the command line in one line, without echoing it', () => {
  const key = randomBytes(32).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-argvkey-'));
  const args = ['relay', 'serve', '--listen', '127.0.0.1:0', '--stun-port', '0', '--state-dir', dir, '--region', 'x', '--mesh-key', key];
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, [MESH_KEY_ENV]: '' } });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /--mesh-key file:PATH/);
  assert.ok(r.stderr.includes(MESH_KEY_ENV));
  assert.ok(!r.stderr.includes(key));
});

test('a lab-style relay start: the mesh key is read from its file and is not in /proc/PID/cmdline', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-labrelay-'));
  writeFileSync(join(dir, 'ca.pem'), createSelfSigned('lab control', ['127.0.0.1']).certPem);
  const key = readFileSync(writeRelayMeshKey(dir), 'utf8').trim();
  const args = relayServeArgs({ dir, bin }, { region: 'east', ip: '127.0.0.1', port: 0, stunPort: 0 });
  const env = { ...process.env };
  delete env[MESH_KEY_ENV];
  const p = spawn(args[0]!, args.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await until(() => /certificate sha256 [0-9a-f]{64}/.test(err) || p.exitCode !== null, 15_000, 'the relay started');
    const m = /on https:\/\/127\.0\.0\.1:(\d+).*certificate sha256 ([0-9a-f]{64})/.exec(err);
    assert.ok(m, err);
    const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
    assert.ok(cmdline.includes('--mesh-key\0file:'), cmdline);
    assert.ok(!cmdline.includes(key), 'the mesh key is in argv');
    assert.ok(!readFileSync(`/proc/${p.pid}/environ`, 'utf8').includes(key), 'the mesh key is in the environment');
    // the relay holds the key from the file: a mesh client presenting it gets in
    const mesh = client(`https://127.0.0.1:${m[1]}`, { fingerprint: m[2]!, meshKey: key });
    try {
      await until(() => mesh.c.connected, 5000, 'the mesh client connected');
    } finally {
      mesh.c.stop();
    }
  } finally {
    p.kill('SIGKILL');
    await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
});
