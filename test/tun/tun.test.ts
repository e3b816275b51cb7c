// The TUN device on the real kernel, inside a namespace this test makes.
// The body runs in a child process inside the namespace (fixtures/tun-probe.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rootSkipReason } from '../helpers/root.js';
import { Lab } from '../helpers/netns.js';
import { packageRoot } from '../../src/cli/version.js';
import { openTun } from '../../src/tun/device.js';
import { TunError } from '../../src/tun/errors.js';

const skip = rootSkipReason();

test('bad interface names are refused before touching the kernel', async () => {
  for (const name of ['', 'a/b', 'has space', 'x'.repeat(16), 'a:b']) {
    await assert.rejects(openTun({ name }), (e: unknown) => e instanceof TunError && e.code === 'TUN_BAD_NAME');
  }
});

for (const offload of [true, false]) {
  test(`TUN (offloads ${offload ? 'on' : 'off'}): MTU and addresses applied, packets read and written, close removes the interface and lets the process exit`, {
    skip,
  }, async () => {
    const lab = new Lab();
    try {
      const ns = await lab.netns('t');
      const probe = join(packageRoot(), 'dist', 'test', 'tun', 'fixtures', 'tun-probe.js');
      const r = await lab.exec(ns, ['env', `MESHCTL_TUN_OFFLOAD=${offload ? '1' : '0'}`, process.execPath, probe], 30_000);
      assert.equal(r.code, 0, `probe failed: ${r.stderr}`);
      const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.equal(result.offload, offload, 'the device runs with the offloads asked for');
      assert.match(result.link, /mtu 1380/);
      assert.match(result.link, /UP/);
      assert.match(result.addr, /10\.80\.0\.1\/24/);
      assert.match(result.addr, /10\.81\.0\.0\/24/, 'route added');
      assert.equal(result.readOk, true, 'a UDP datagram sent along the added route was read from the TUN with its payload');
      assert.equal(result.writeOk, true, 'a packet written to the TUN reached a local UDP socket');
      assert.equal(result.goneAfterClose, true);
      assert.equal(result.doubleCloseOk, true);
    } finally {
      await lab.cleanup();
    }
  });
}
