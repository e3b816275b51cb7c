// `meshctl control users …`, `control authkey create --user|--tags`,
// `authkey list|revoke` and `control nodes approve` as a user runs them: the
// real binary, against a running server (admin socket) and against the
// database alone; exit codes, one-line errors, and no secret in any listing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { oneLine, runCli as run } from '../helpers/cli-run.js';
import { harness, Node, registerBody, tempDir } from '../control/helpers.js';

test('help names the identity commands and flags', async () => {
  const users = await run('control', 'users', '--help');
  assert.equal(users.code, 0);
  for (const c of ['create', 'list', 'delete']) assert.match(users.out, new RegExp(`^\\s+${c}\\b`, 'm'), c);
  assert.match((await run('control', 'users', 'delete', '--help')).out, /--force/);
  const authkey = await run('control', 'authkey', '--help');
  for (const c of ['create', 'list', 'revoke']) assert.match(authkey.out, new RegExp(`^\\s+${c}\\b`, 'm'), c);
  assert.match((await run('control', 'authkey', 'create', '--help')).out, /--user <name>[\s\S]*--tags <tags>/);
  assert.match((await run('control', 'nodes', '--help')).out, /^\s+approve\b/m);
  assert.match((await run('control', 'serve', '--help')).out, /--require-approval/);
});

test('users, owned and tagged keys, list, revoke and approve against a running server', async () => {
  const h = await harness({ requireApproval: true });
  try {
    const dir = ['--state-dir', h.dir];
    const created = await run('control', 'users', 'create', 'alice', ...dir);
    assert.equal(created.code, 0, created.err);
    assert.match(created.err, /^user alice created$/m);
    const upper = await run('control', 'users', 'create', 'Alice', ...dir);
    assert.equal(upper.code, 2);
    oneLine(upper.err);
    assert.match(upper.err, /lower-case/);
    const dup = await run('control', 'users', 'create', 'alice', ...dir);
    assert.equal(dup.code, 1);
    oneLine(dup.err);
    assert.match(dup.err, /exists already/);

    const noUser = await run('control', 'authkey', 'create', '--user', 'bob', ...dir);
    assert.equal(noUser.code, 4);
    oneLine(noUser.err);
    assert.match(noUser.err, /users create bob/);
    const both = await run('control', 'authkey', 'create', '--user', 'alice', '--tags', 'tag:x', ...dir);
    assert.equal(both.code, 2);
    oneLine(both.err);
    const badTag = await run('control', 'authkey', 'create', '--tags', 'server', ...dir);
    assert.equal(badTag.code, 2);
    oneLine(badTag.err);
    assert.match(badTag.err, /"server" is not a tag/);

    const ak = await run('control', 'authkey', 'create', '--user', 'alice', '--reusable', ...dir);
    assert.equal(ak.code, 0, ak.err);
    const key = ak.out.trim().split('\n').at(-1)!;
    assert.match(ak.err, /owner alice/);
    const tk = await run('control', 'authkey', 'create', '--tags', 'tag:server,tag:nas', ...dir);
    assert.equal(tk.code, 0, tk.err);
    const tagKey = tk.out.trim().split('\n').at(-1)!;

    const list = await run('control', 'authkey', 'list', ...dir);
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^ID\s+PREFIX\s+OWNER\s+FLAGS\s+EXPIRES\s+USED\s+STATE$/m);
    assert.match(list.out, /\s+alice\s+reusable\s+never\s+0\s+valid$/m);
    assert.match(list.out, /\s+tag:server,tag:nas\s+single-use\s+never\s+0\s+valid$/m);
    const json = await run('control', 'authkey', 'list', '--json', ...dir);
    for (const k of [key, tagKey]) {
      const secret = k.split('-')[2]!;
      assert.ok(!list.out.includes(secret) && !json.out.includes(secret), 'no secret in either listing');
    }
    const id = key.split('-')[1]!;
    assert.deepEqual((JSON.parse(json.out) as { id: string; prefix: string }[]).map((k) => k.prefix)[0], `mskey-${id}`);

    const n = new Node(h.server.publicKey!);
    assert.equal((await h.post('/meshctl/v1/register', n.seal('register', registerBody(key, 'laptop')))).status, 200);
    const nodes = await run('control', 'nodes', 'list', ...dir);
    assert.match(nodes.out, /^ID\s+NAME\s+IPV4\s+IPV6\s+OS\s+OWNER\s+STATE\s+LAST SEEN$/m);
    assert.match(nodes.out, /\slaptop\s.*\salice\s+pending\s/m);
    const approve = await run('control', 'nodes', 'approve', 'laptop', ...dir);
    assert.equal(approve.code, 0, approve.err);
    assert.match(approve.err, /^node laptop \(id 1\) approved$/m);
    assert.match((await run('control', 'nodes', 'list', ...dir)).out, /\slaptop\s.*\salice\s+offline\s/m);
    assert.equal((await run('control', 'nodes', 'approve', 'nobody', ...dir)).code, 4);

    const revoke = await run('control', 'authkey', 'revoke', id, ...dir);
    assert.equal(revoke.code, 0, revoke.err);
    assert.match(revoke.err, /revoked; nodes it registered stay/);
    assert.match((await run('control', 'authkey', 'list', ...dir)).out, /\salice\s.*\srevoked$/m);
    const unknown = await run('control', 'authkey', 'revoke', 'feedfeedfeed', ...dir);
    assert.equal(unknown.code, 4);
    oneLine(unknown.err);

    const refused = await run('control', 'users', 'delete', 'alice', ...dir);
    assert.equal(refused.code, 1);
    oneLine(refused.err);
    assert.match(refused.err, /owns 1 node\(s\) and 1 auth key\(s\).*--force/);
    const users = await run('control', 'users', 'list', ...dir);
    assert.match(users.out, /^alice\s+1\s+1\s+\S+$/m);
    const forced = await run('control', 'users', 'delete', 'alice', '--force', ...dir);
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.err, /^user alice deleted with 1 node\(s\) and 1 auth key\(s\)$/m);
    assert.doesNotMatch((await run('control', 'nodes', 'list', ...dir)).out, /laptop/);
    assert.equal((await run('control', 'users', 'list', ...dir)).out, 'no users\n');
  } finally {
    await h.close();
  }
});

test('users and auth keys work on the database alone when no server runs', async () => {
  const dir = tempDir();
  try {
    assert.equal((await run('control', 'users', 'create', 'bob', '--state-dir', dir)).code, 0);
    const k = await run('control', 'authkey', 'create', '--user', 'bob', '--json', '--state-dir', dir);
    assert.equal(k.code, 0, k.err);
    const info = JSON.parse(k.out) as { id: string; user: string };
    assert.equal(info.user, 'bob');
    assert.equal((await run('control', 'authkey', 'revoke', `mskey-${info.id}`, '--state-dir', dir)).code, 0);
    const rows = JSON.parse((await run('control', 'authkey', 'list', '--json', '--state-dir', dir)).out) as { revoked: boolean; user: string }[];
    assert.deepEqual(
      rows.map((r) => [r.user, r.revoked]),
      [['bob', true]],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
