// What `up` remembers: read and written without loading anything heavy, at the
// path conf used before (files it wrote still read), written only on a change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientPrefsPath, loadClientPrefs, prefsUnchanged, saveClientPrefs } from '../../src/cli/client-prefs.js';

function inTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-prefs-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the prefs path: MESHCTL_CONFIG_DIR, else $XDG_CONFIG_HOME/meshctl, else ~/.config/meshctl', () => {
  assert.equal(clientPrefsPath({ MESHCTL_CONFIG_DIR: '/c', XDG_CONFIG_HOME: '/x' }), '/c/cli.json');
  assert.equal(clientPrefsPath({ XDG_CONFIG_HOME: '/x' }), '/x/meshctl/cli.json');
  assert.equal(clientPrefsPath({ XDG_CONFIG_HOME: '' }), join(homedir(), '.config', 'meshctl', 'cli.json'));
});

test('saved prefs read back, merge with what is there, and the file is 0600', () =>
  inTempDir((dir) => {
    const env = { XDG_CONFIG_HOME: dir };
    saveClientPrefs({ loginServer: 'https://c.example:8443', daemons: { '/run/x.sock': { stateDir: '/var/lib/x', ifname: 'mesh1', port: 41642 } } }, env);
    saveClientPrefs({ controlCa: '/etc/ca.pem', loginServer: undefined }, env);
    assert.deepEqual(loadClientPrefs(env), {
      loginServer: 'https://c.example:8443',
      controlCa: '/etc/ca.pem',
      daemons: { '/run/x.sock': { stateDir: '/var/lib/x', ifname: 'mesh1', port: 41642 } },
    });
    assert.equal(statSync(join(dir, 'meshctl', 'cli.json')).mode & 0o777, 0o600);
    // a file conf wrote (tab-indented JSON, no trailing newline) reads the same
    mkdirSync(join(dir, 'old'));
    writeFileSync(join(dir, 'old', 'cli.json'), '{\n\t"loginServer": "https://old:1"\n}');
    assert.deepEqual(loadClientPrefs({ MESHCTL_CONFIG_DIR: join(dir, 'old') }), { loginServer: 'https://old:1' });
  }));

test('a missing, corrupt or non-object prefs file reads as empty', () =>
  inTempDir((dir) => {
    const env = { MESHCTL_CONFIG_DIR: dir };
    assert.deepEqual(loadClientPrefs(env), {});
    for (const text of ['{"loginServer": ', '[1]', 'null', '7']) {
      writeFileSync(join(dir, 'cli.json'), text);
      assert.deepEqual(loadClientPrefs(env), {}, text);
    }
  }));

test('saving what is already there does not touch the file; a change does', () =>
  inTempDir((dir) => {
    const env = { MESHCTL_CONFIG_DIR: dir };
    const p = { loginServer: 'https://a:1', daemons: { s: { stateDir: '/d', ifname: 'm0', port: 1 } } };
    saveClientPrefs(p, env);
    const file = join(dir, 'cli.json');
    assert.ok(prefsUnchanged(loadClientPrefs(env), { ...p, controlCa: undefined }));
    const marked = readFileSync(file, 'utf8') + '   '; // trailing blanks a save would not write
    writeFileSync(file, marked);
    saveClientPrefs({ ...p, controlCa: undefined }, env);
    assert.equal(readFileSync(file, 'utf8'), marked, 'unchanged prefs were written again');
    saveClientPrefs({ daemons: { s: { stateDir: '/d', ifname: 'm0', port: 2 } } }, env);
    assert.equal(loadClientPrefs(env).daemons?.s?.port, 2);
    assert.equal(loadClientPrefs(env).loginServer, 'https://a:1');
  }));

test('an unwritable config dir does not throw: `up` still works from its flags', () =>
  inTempDir((dir) => {
    writeFileSync(join(dir, 'file'), '');
    assert.doesNotThrow(() => saveClientPrefs({ loginServer: 'https://a:1' }, { MESHCTL_CONFIG_DIR: join(dir, 'file', 'sub') }));
  }));
