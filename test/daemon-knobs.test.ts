// Timer knobs tests pass to daemons through the environment (src/daemon/test-knobs.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daemonKnobsFromEnv } from '../src/daemon/test-knobs.js';

test('knobs are read when set and refused when not a positive number of milliseconds', () => {
  assert.deepEqual(daemonKnobsFromEnv({}), { engineTimers: {}, pathTimers: {}, idleReleaseMs: undefined, extraAllowedIps: undefined });
  const k = daemonKnobsFromEnv({ MESHCTL_IDLE_RELEASE_MS: '1000', MESHCTL_REKEY_AFTER_TIME_MS: '500', MESHCTL_PATH_HEARTBEAT_MS: '250' });
  assert.equal(k.idleReleaseMs, 1000);
  assert.equal(k.engineTimers.rekeyAfterTimeMs, 500);
  assert.equal(k.pathTimers.heartbeatMs, 250);
  for (const bad of ['0', '-5', 'soon']) {
    assert.throws(() => daemonKnobsFromEnv({ MESHCTL_IDLE_RELEASE_MS: bad }), new RegExp(`MESHCTL_IDLE_RELEASE_MS="${bad}" must be a positive number`));
  }
});
