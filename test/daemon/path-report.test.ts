// The path counts a node reports to control: sent when they change, at most once
// per interval, and again after control forgot them (a new map stream, a failed send).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PATH_REPORT_MIN_INTERVAL_MS, PathReporter } from '../../src/daemon/path-report.js';

test('the first counts go at once; the same counts never again; a change waits for the interval', () => {
  const r = new PathReporter(1000);
  const c = (direct: number, relay: number) => ({ direct, relay });
  assert.deepEqual(r.due(c(0, 0), 0), c(0, 0), 'the first report, even of zeros');
  r.sending(c(0, 0), 0);
  assert.equal(r.due(c(0, 0), 60_000), undefined, 'unchanged: nothing to send however long after');
  assert.equal(r.due(c(2, 1), 999), undefined, 'changed, but within the interval');
  assert.deepEqual(r.due(c(2, 1), 1000), c(2, 1));
  r.sending(c(2, 1), 1000);
  r.forget(); // control did not take it (or the node reconnected): the same counts go again, after the interval
  assert.equal(r.due(c(2, 1), 1500), undefined);
  assert.deepEqual(r.due(c(2, 1), 2000), c(2, 1));
  assert.ok(PATH_REPORT_MIN_INTERVAL_MS >= 1000, 'the default interval is seconds, not milliseconds');
});
