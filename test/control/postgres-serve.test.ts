// `meshctl control serve --db postgres://…` against a real throwaway cluster:
// a node joins, the server restarts and still knows it (same addresses, no
// auth key needed), and a bad --db is refused with one line naming the fix.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { admin } from '../../src/control/admin-client.js';
import { packageRoot } from '../../src/cli/version.js';
import { stateFiles } from '../../src/control/state-dir.js';
import { keyFromText } from '../../src/crypto/keys.js';
import { postgresSkipReason, startPostgres, type PgCluster } from '../helpers/postgres.js';
import { Node, registerBody, send, tempDir } from './helpers.js';

const bin = join(packageRoot(), 'bin', 'meshctl');
const P = '/meshctl/v1';
const skip = postgresSkipReason();
let cluster: PgCluster | null = null;
before(async () => {
  if (!skip) cluster = await startPostgres();
});
after(async () => cluster?.stop());

interface Serving {
  child: ChildProcess;
  url: string;
  publicKey: Buffer;
  stop(): Promise<void>;
}

/** Runs `control serve` until it says it listens; its port and control key come from that line. */
async function serve(dir: string, db: string, env: NodeJS.ProcessEnv = {}): Promise<Serving> {
  const child = spawn(process.execPath, [bin, 'control', 'serve', '--listen', '127.0.0.1:0', '--state-dir', dir, '--db', db], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const t0 = Date.now();
  let m: RegExpExecArray | null = null;
  while (!(m = /listening on (https:\/\/127\.0\.0\.1:\d+), control key (\S+)/.exec(err))) {
    if (Date.now() - t0 > 30_000 || child.exitCode !== null) {
      await stop();
      throw new Error(`control serve --db did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, url: m[1]!, publicKey: keyFromText(m[2]!)!, stop };
}

test('control serve --db: a node joins; after a restart the server still knows it, with the same addresses', { skip: skip || undefined }, async () => {
  const dir = tempDir();
  const db = await cluster!.createDatabase('serve');
  let s = await serve(dir, db);
  try {
    const key = (await admin.createAuthKey(dir, { reusable: false, ephemeral: false, expiryMs: null })).key;
    const ca = readFileSync(stateFiles(dir).cert, 'utf8');
    const node = new Node(s.publicKey);
    const first = await send(s.url, ca, 'POST', `${P}/register`, JSON.stringify(node.seal('register', registerBody(key, 'pgnode'))));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const joined = (first.body.node as { addresses: string[] }).addresses;
    // the single-use key is spent, in the database
    const other = new Node(s.publicKey);
    const refused = await send(s.url, ca, 'POST', `${P}/register`, JSON.stringify(other.seal('register', registerBody(key, 'second'))));
    assert.equal((refused.body.error as { code: string }).code, 'AUTHKEY_USED');

    await s.stop();
    s = await serve(dir, db);
    const again = await send(s.url, ca, 'POST', `${P}/register`, JSON.stringify(node.seal('register', registerBody(undefined, 'pgnode'))));
    assert.equal(again.status, 200, 'a known node needs no auth key after the restart');
    assert.deepEqual((again.body.node as { addresses: string[] }).addresses, joined);
    const listed = await admin.listNodes(dir);
    assert.deepEqual(
      listed.map((n) => n.name),
      ['pgnode'],
    );
    assert.equal(await cluster!.psql('serve', 'SELECT count(*) FROM nodes'), '1\n');
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('control serve --db refuses a password in the URL and a missing database, each with one line naming the fix', { skip: skip || undefined }, async () => {
  const dir = tempDir();
  try {
    const run = (db: string) =>
      spawnSync(process.execPath, [bin, 'control', 'serve', '--listen', '127.0.0.1:0', '--state-dir', dir, '--db', db], { encoding: 'utf8', timeout: 30_000 });
    const withPassword = run(`postgres://postgres:hunter2@localhost/x?host=${encodeURIComponent(cluster!.dir)}`);
    assert.equal(withPassword.status, 2, withPassword.stderr);
    assert.match(withPassword.stderr, /carries a password.*set PGPASSWORD or MESHCTL_PG_PASSWORD/);
    assert.ok(!withPassword.stderr.includes('hunter2'), 'the password is not echoed');
    assert.equal(withPassword.stderr.trim().split('\n').length, 1);
    const missing = run(cluster!.url('not_created'));
    assert.equal(missing.status, 1, missing.stderr);
    assert.match(missing.stderr, /database not_created does not exist .*createdb/);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
