// The bench's profile summary: each sample's time goes to the function on top of the stack, the same
// function in two profiles adds up, shares are of all sampled time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selfTimes } from '../../bench/cpuprofile.js';

const node = (id: number, functionName: string, url = '', lineNumber = 0) => ({ id, callFrame: { functionName, url, lineNumber } });

test('self time by function, summed over profiles, largest first', () => {
  const a = { nodes: [node(1, '(idle)'), node(2, 'seal', 'file:///x/chunk.js', 9), node(3, '')], samples: [1, 2, 2, 3], timeDeltas: [4000, 1000, 2000, 500] };
  const b = { nodes: [node(7, 'seal', 'file:///y/chunk.js', 9)], samples: [7, 7], timeDeltas: [1500, -5] };
  const { totalMs, rows } = selfTimes([a, b]);
  assert.equal(totalMs, 9);
  assert.deepEqual(
    rows.map((r) => [r.fn, r.ms]),
    [
      ['seal chunk.js:10', 4.5],
      ['(idle)', 4],
      ['(anonymous)', 0.5],
    ],
  );
  assert.equal(rows[0]!.share, 0.5);
});
