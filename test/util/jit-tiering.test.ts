// The data path's JIT setting is applied once per process, and can be declined.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tuneJitForDataPath } from '../../src/util/jit-tiering.js';

test('MESHCTL_JIT_DEFAULTS=1 keeps V8 defaults; otherwise the budget is set once', () => {
  assert.equal(tuneJitForDataPath({ MESHCTL_JIT_DEFAULTS: '1' }), false);
  assert.equal(tuneJitForDataPath({}), true);
  assert.equal(tuneJitForDataPath({}), false);
});
