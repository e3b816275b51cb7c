// The CLI reads its remembered defaults without loading conf; that only holds
// while the path it reads is the one conf writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Conf from 'conf';
import { clientPrefsPath, loadClientPrefs, prefsUnchanged, saveClientPrefs } from '../../src/cli/client-prefs.js';

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return fn().finally(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

test('the direct read uses the file conf writes, with MESHCTL_CONFIG_DIR and with XDG_CONFIG_HOME', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-prefs-'));
  try {
    for (const env of [{ MESHCTL_CONFIG_DIR: join(dir, 'cfg'), XDG_CONFIG_HOME: undefined }, { MESHCTL_CONFIG_DIR: undefined, XDG_CONFIG_HOME: join(dir, 'xdg') }]) {
      await withEnv(env, async () => {
        const conf = new Conf({ projectName: 'meshctl', projectSuffix: '', cwd: process.env.MESHCTL_CONFIG_DIR || undefined, configName: 'cli' });
        assert.equal(clientPrefsPath(process.env, 'linux'), conf.path);
        await saveClientPrefs({ loginServer: 'https://c.example:8443', daemons: { '/run/x.sock': { stateDir: '/var/lib/x', ifname: 'mesh1', port: 41642 } } });
        assert.deepEqual(await loadClientPrefs(), {
          loginServer: 'https://c.example:8443',
          daemons: { '/run/x.sock': { stateDir: '/var/lib/x', ifname: 'mesh1', port: 41642 } },
        });
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing or corrupt prefs file reads as empty, as with conf', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-prefs-'));
  try {
    await withEnv({ MESHCTL_CONFIG_DIR: dir }, async () => {
      assert.deepEqual(await loadClientPrefs(), {});
      writeFileSync(join(dir, 'cli.json'), '{"loginServer": ');
      assert.deepEqual(await loadClientPrefs(), {});
      writeFileSync(join(dir, 'cli.json'), '[1]');
      assert.deepEqual(await loadClientPrefs(), {});
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('saving what is already there does not touch the file; a change does', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-prefs-'));
  try {
    await withEnv({ MESHCTL_CONFIG_DIR: dir }, async () => {
      const p = { loginServer: 'https://a:1', daemons: { s: { stateDir: '/d', ifname: 'm0', port: 1 } } };
      await saveClientPrefs(p, {});
      const file = join(dir, 'cli.json');
      const saved = await loadClientPrefs();
      assert.ok(prefsUnchanged(saved, { ...p, controlCa: undefined }));
      const marked = readFileSync(file, 'utf8') + '   '; // trailing blanks conf would not write
      writeFileSync(file, marked);
      await saveClientPrefs({ ...p, controlCa: undefined }, saved);
      assert.equal(readFileSync(file, 'utf8'), marked, 'unchanged prefs were written again');
      assert.equal(prefsUnchanged(saved, { daemons: { s: { stateDir: '/d', ifname: 'm0', port: 2 } } }), false);
      await saveClientPrefs({ daemons: { s: { stateDir: '/d', ifname: 'm0', port: 2 } } }, saved);
      assert.equal((await loadClientPrefs()).daemons?.s?.port, 2);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
