// The daemon's Backend against a control server that sends a bad map, in a
// network namespace of the test's own: the bad map is refused whole with one
// log line naming the field, the previous map stays in effect, the daemon
// goes on and takes the next good map, and only canonical addresses reach the
// interface. A bad register answer fails `up` with one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../helpers/netns.js';
import { rootSkipReason } from '../helpers/root.js';

const skip = rootSkipReason();

test('a bad map from control is refused whole and the previous map stays', { skip, timeout: 60_000 }, async () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-backend-'));
  try {
    const ns = await lab.netns('b');
    const scenario = join(fileURLToPath(new URL('.', import.meta.url)), 'backend-scenario.js');
    const r = await lab.exec(ns, [process.execPath, scenario, dir], 45_000);
    const out = JSON.parse(r.stdout || '{}') as Record<string, unknown>;
    assert.equal(out.crashed, undefined, String(out.crashed) + r.stderr);
    assert.deepEqual(out.afterGood, ['node2']);
    assert.deepEqual(out.owners, [null, ['tag:server'], 'alice', null], 'status shows owner and tags');
    assert.deepEqual(out.whoisOwner, ['alice', null]);
    assert.equal(out.refusedLogged, true);
    assert.deepEqual(out.afterBad, ['node2'], 'the previous map is still in effect');
    assert.equal(out.stateAfterBad, 'Running');
    assert.equal(out.secondGoodApplied, true, 'the next good map is taken');
    assert.equal(out.deltaApplied, true, 'a delta after a whole map is in effect');
    assert.deepEqual(out.statusText, [
      [true, true],
      [true, true],
    ]);
    assert.deepEqual(out.addresses, ['100.64.0.1/32', 'fd7a:115c:a1e0::1/128']);
    assert.match(String(out.badRegister), /^register result from control refused: node\.addresses\[0\]: not an IP address: "100\.64\.0\.1\\nip route add/);
    assert.equal(out.mt1Left, false, 'the interface made for the failed up is gone');
    assert.deepEqual(out.logs, [
      'map from control refused: peers[3].addresses[1]: not an IP address: "evil; ip link del mt0"',
      'register result from control refused: node.addresses[0]: not an IP address: "100.64.0.1\\nip route add default dev mt1"',
    ]);
  } finally {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
