// `meshctl debug engine` as a process: detaches once its UAPI socket is up,
// and on SIGTERM exits 0 after removing its socket and its interface.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { rootSkipReason } from '../helpers/root.js';
import { Lab, uniqueSuffix } from '../helpers/netns.js';
import { packageRoot } from '../../src/cli/version.js';

const skip = rootSkipReason();
const bin = join(packageRoot(), 'bin', 'meshctl');

test('detached start, then SIGTERM removes the socket and the interface', { skip }, async () => {
  const lab = new Lab();
  const ifname = `mcd${uniqueSuffix()}`; // its UAPI socket lives in a directory every namespace shares
  const sock = `/var/run/wireguard/${ifname}.sock`;
  let pid = 0;
  try {
    const ns = await lab.netns('d');
    const r = await lab.exec(ns, [process.execPath, bin, 'debug', 'engine', '--ifname', ifname, '--listen-port', '0'], 20_000);
    assert.equal(r.code, 0, r.stderr);
    const m = /pid (\d+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    pid = Number(m[1]);
    assert.ok(existsSync(sock));
    assert.equal((await lab.exec(ns, ['ip', 'link', 'show', ifname])).code, 0);
    // a second engine on the same name refuses with a clear cause
    const again = await lab.exec(ns, [process.execPath, bin, 'debug', 'engine', '--ifname', ifname, '--foreground'], 20_000);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /in use|busy/i);
    assert.equal(again.stderr.trim().split('\n').length, 1, again.stderr);
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        pid = 0;
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(pid, 0, 'engine exited');
    assert.equal(existsSync(sock), false, 'socket removed');
    assert.notEqual((await lab.exec(ns, ['ip', 'link', 'show', ifname])).code, 0, 'interface removed');
  } finally {
    if (pid) process.kill(pid, 'SIGKILL');
    await lab.cleanup();
    rmSync(sock, { force: true }); // this test's own socket (a random name), left behind only if the engine was killed
  }
});
