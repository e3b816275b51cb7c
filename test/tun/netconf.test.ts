// Interface configuration on the real kernel, inside a namespace this test
// makes (the body runs in fixtures/netconf-probe.js there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rootSkipReason } from '../helpers/root.js';
import { Lab } from '../helpers/netns.js';
import { packageRoot } from '../../src/cli/version.js';

test('MTU and link by ioctl, addresses and routes in one ip batch: applied, repeatable, failures named', { skip: rootSkipReason() }, async () => {
  const lab = new Lab();
  try {
    const ns = await lab.netns('nc');
    const r = await lab.exec(ns, [process.execPath, join(packageRoot(), 'dist', 'test', 'tun', 'fixtures', 'netconf-probe.js')], 30_000);
    assert.equal(r.code, 0, `probe failed: ${r.stderr}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { link: string; addr: string; route: string; errors: Record<string, string> };
    assert.match(res.link, /mtu 1280/);
    assert.match(res.link, /<[^>]*\bUP\b/);
    assert.match(res.addr, /inet 10\.90\.0\.1\/32/);
    assert.match(res.addr, /inet6 fd00:90::1\/128/);
    assert.match(res.route, /10\.90\.0\.0\/16/);
    assert.match(res.route, /fd00:90::\/48/);
    assert.match(res.errors.noDevice!, /^TUN_CONFIG_FAILED: setting MTU 1280 on nosuch0: no such interface/);
    assert.match(res.errors.tinyMtu!, /^TUN_CONFIG_FAILED: setting MTU 40 on mcnc\d+: the kernel refused the value/);
    assert.match(res.errors.badRoute!, /^TUN_CONFIG_FAILED: ip -batch \(.*route add not-a-prefix dev mcnc\d+\): .*not-a-prefix/);
    assert.match(res.errors.otherRoutes!, /^no error; 10\.90\.0\.0\/16 dev mcnc\d+ /, 'the first interface keeps its route');
    assert.doesNotMatch(res.errors.otherRoutes!, /mcnc\d+b/);
    assert.match(res.errors.noDeviceBatch!, /^TUN_CONFIG_FAILED: ip addr replace 10\.92\.0\.1\/32 dev nosuch0: Cannot find device "nosuch0"$/);
  } finally {
    await lab.cleanup();
  }
});
