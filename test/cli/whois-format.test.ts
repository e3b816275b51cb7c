// `meshctl whois` as text: the node's owner or tags, as control sent them, on their own lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatWhois } from '../../src/cli/ip.js';

const base = { name: 'nas', ips: ['100.64.0.2'], nodeKey: 'k', os: 'linux', self: false };

test('whois shows the owner, or the tags, and neither line when control sent neither', () => {
  assert.match(formatWhois({ ...base, user: 'alice' }), /\n {2}User: {5}alice\n$/);
  assert.match(formatWhois({ ...base, tags: ['tag:server', 'tag:nas'] }), /\n {2}Tags: {5}tag:server, tag:nas\n$/);
  assert.doesNotMatch(formatWhois(base), /User:|Tags:/);
});
