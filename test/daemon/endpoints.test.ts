// What a node reports as its endpoints: control refuses more than
// MAX_NODE_ENDPOINTS, so the list is cut there, keeping the learned ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_NODE_ENDPOINTS } from '../../src/netmap/types.js';
import { endpointsToReport } from '../../src/daemon/local-endpoints.js';

test('local endpoints first, then learned ones, each once', () => {
  assert.deepEqual(endpointsToReport(['10.0.0.2:41641', '10.0.0.2:41641'], ['7.0.0.1:41641', '10.0.0.2:41641'], MAX_NODE_ENDPOINTS), [
    '10.0.0.2:41641',
    '7.0.0.1:41641',
  ]);
});

test('a host with more addresses than fit keeps every learned endpoint and cuts the local list', () => {
  const local = Array.from({ length: 40 }, (_, i) => `10.0.${i}.2:41641`);
  const learned = ['7.0.0.1:41641', '7.0.0.1:3902'];
  const out = endpointsToReport(local, learned, MAX_NODE_ENDPOINTS);
  assert.equal(out.length, MAX_NODE_ENDPOINTS);
  assert.deepEqual(out.slice(-2), learned);
  assert.deepEqual(out.slice(0, MAX_NODE_ENDPOINTS - 2), local.slice(0, MAX_NODE_ENDPOINTS - 2));
});
