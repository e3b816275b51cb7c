// The policy file's parser: every section into typed values, and every
// malformed input refused with the field and its line:col.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyError, parsePolicy } from '../../src/policy/parse.js';
import { failedTests } from '../../src/policy/check.js';
import { loadPolicy, PolicyTestError } from '../../src/policy/load.js';
import { MAX_ACL_SOURCES, MAX_POLICY_ACLS, MAX_POLICY_BYTES, MAX_PORT_RANGES } from '../../src/policy/types.js';

const GOOD = `{
  // people
  "groups": { "group:admins": ["alice", "bob"] },
  "tagOwners": { "tag:nas": ["group:admins"], "tag:server": ["tag:nas", "carol"] },
  "hosts": { "printer": "192.168.1.5", "lab": "10.1.0.0/16" },
  "acls": [
    { "action": "accept", "src": ["group:admins"], "dst": ["tag:nas:22,443", "host:printer:631"] },
    { "action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"], "proto": "tcp" },
    { "action": "accept", "src": ["100.64.0.0/10", "fd7a:115c:a1e0::1"], "dst": ["[fd00::1]:8000-8999", "10.1.0.0/16:*"], "proto": ["udp", 132, "6"] },
    { "action": "accept", "src": ["*"], "dst": ["alice:*", "autogroup:tagged:80"] }, // trailing comma next
  ],
  "autoApprovers": { "routes": { "10.1.0.0/16": ["tag:server"] }, "exitNode": ["group:admins"] },
  "tests": [{ "src": "alice", "accept": ["tag:nas:22"], "deny": ["tag:nas:5432"] }],
}`;

test('a full policy parses into typed values: groups expanded, hosts resolved, ports and protocols', () => {
  const p = parsePolicy(GOOD);
  assert.deepEqual(p.groups.get('group:admins'), ['alice', 'bob']);
  assert.deepEqual(p.hosts.get('printer'), '192.168.1.5/32');
  assert.deepEqual(p.tagOwners.get('tag:server'), [
    { kind: 'tag', name: 'tag:nas' },
    { kind: 'user', name: 'carol' },
  ]);
  assert.equal(p.acls.length, 4);
  assert.deepEqual(p.acls[0]!.src, [
    { kind: 'user', name: 'alice' },
    { kind: 'user', name: 'bob' },
  ]);
  assert.deepEqual(p.acls[0]!.dst, [
    {
      selector: { kind: 'tag', name: 'tag:nas' },
      ports: [
        { first: 22, last: 22 },
        { first: 443, last: 443 },
      ],
    },
    { selector: { kind: 'prefix', prefix: '192.168.1.5/32' }, ports: [{ first: 631, last: 631 }] },
  ]);
  assert.deepEqual(p.acls[1]!.dst, [{ selector: { kind: 'self' }, ports: [{ first: 0, last: 65535 }] }]);
  assert.deepEqual(p.acls[1]!.protocols, [6]);
  assert.deepEqual(p.acls[2]!.src, [
    { kind: 'prefix', prefix: '100.64.0.0/10' },
    { kind: 'prefix', prefix: 'fd7a:115c:a1e0::1/128' },
  ]);
  assert.deepEqual(p.acls[2]!.dst[0], { selector: { kind: 'prefix', prefix: 'fd00::1/128' }, ports: [{ first: 8000, last: 8999 }] });
  assert.deepEqual(p.acls[2]!.protocols, [6, 17, 132]);
  assert.deepEqual(p.acls[3]!.src, [{ kind: 'all' }]);
  assert.deepEqual(p.acls[3]!.dst[1]!.selector, { kind: 'tagged' });
  assert.deepEqual(p.autoApprovers.routes, [{ prefix: '10.1.0.0/16', approvers: [{ kind: 'tag', name: 'tag:server' }] }]);
  assert.equal(p.tests.length, 1);
  assert.deepEqual(failedTests(p), []);
  assert.deepEqual(parsePolicy('{}').acls, []);
});

/** The error for `text`: field, reason and position. */
function refusal(text: string): PolicyError {
  try {
    parsePolicy(text);
  } catch (err) {
    assert.ok(err instanceof PolicyError, String(err));
    return err;
  }
  assert.fail(`accepted: ${text}`);
}

const acl = (dst: string, src = '"alice"', extra = ''): string =>
  `{\n  "acls": [\n    { "action": "accept", "src": [${src}], "dst": ["${dst}"]${extra} }\n  ]\n}`;

test('every malformed policy is refused with the field, the cause and line:col', () => {
  const cases: Array<[string, string, RegExp, string]> = [
    ['{ "acls": [ }', 'policy', /not JSON with comments: ValueExpected/, '1:13'],
    ['', 'policy', /not JSON with comments/, '1:1'],
    ['[]', '', /expected an object/, '1:1'],
    ['{ "acl": [] }', 'acl', /unknown field/, '1:3'],
    ['{ "acls": [], "acls": [] }', 'acls', /given twice/, '1:15'],
    [acl('group:admin:22'), 'acls[0].dst[0]', /unknown group "group:admin"/, '3:53'],
    [acl('tag:nas:22'), 'acls[0].dst[0]', /unknown tag "tag:nas": declare it in tagOwners/, '3:53'],
    [acl('host:nas:22'), 'acls[0].dst[0]', /unknown host/, '3:53'],
    [acl('alice'), 'acls[0].dst[0]', /no ports/, '3:53'],
    [acl('alice:70000'), 'acls[0].dst[0]', /bad port "70000"/, '3:53'],
    [acl('alice:443-22'), 'acls[0].dst[0]', /empty \(first > last\)/, '3:53'],
    [acl('alice:ssh'), 'acls[0].dst[0]', /bad port "ssh"/, '3:53'],
    [acl(`alice:${Array.from({ length: MAX_PORT_RANGES + 1 }, (_, i) => i + 1).join(',')}`), 'acls[0].dst[0]', /more than 64 port ranges/, '3:53'],
    [acl('10.1.2.3/8:*'), 'acls[0].dst[0]', /host bits set: write 10.0.0.0\/8/, '3:53'],
    [acl('Alice:*'), 'acls[0].dst[0]', /not a user, group:, tag:, host:/, '3:53'],
    [acl('autogroup:internet:*'), 'acls[0].dst[0]', /unknown autogroup/, '3:53'],
    [acl('alice:*', '"autogroup:self"'), 'acls[0].src[0]', /only a destination/, '3:35'],
    [acl('alice:*', '"alice"', ', "proto": "tcpx"'), 'acls[0].proto', /not a protocol: "tcpx"/, '3:74'],
    [acl('alice:*', '"alice"', ', "proto": [300]'), 'acls[0].proto[0]', /not a protocol: 300/, '3:75'],
    [acl('alice:*', '"alice"', ', "action2": 1'), 'acls[0].action2', /unknown field/, '3:65'],
    ['{ "acls": [{ "action": "deny", "src": ["*"], "dst": ["*:*"] }] }', 'acls[0].action', /only "accept"/, '1:24'],
    ['{ "acls": [{ "action": "accept", "dst": ["*:*"] }] }', 'acls[0].src', /missing/, '1:12'],
    ['{ "acls": [{ "action": "accept", "src": "*", "dst": ["*:*"] }] }', 'acls[0].src', /expected a list/, '1:41'],
    ['{ "groups": { "admins": ["alice"] } }', 'groups.admins', /group name/, '1:15'],
    ['{ "groups": { "group:a": ["group:b"] } }', 'groups.group:a[0]', /a group holds users only/, '1:27'],
    ['{ "hosts": { "nas": "nas.local" } }', 'hosts.nas', /not an address or prefix/, '1:21'],
    ['{ "hosts": { "Nas!": "10.0.0.1" } }', 'hosts.Nas!', /one DNS label/, '1:14'],
    ['{ "tagOwners": { "tag:a": ["tag:b"] } }', 'tagOwners.tag:a[0]', /unknown tag "tag:b"/, '1:28'],
    ['{ "tagOwners": { "nas": [] } }', 'tagOwners.nas', /a tag is "tag:"/, '1:18'],
    ['{ "tagOwners": { "tag:a": ["*"] } }', 'tagOwners.tag:a[0]', /cannot own/, '1:28'],
    ['{ "autoApprovers": { "routes": { "10.0.0.1/8": ["alice"] } } }', 'autoApprovers.routes.10.0.0.1/8', /host bits/, '1:34'],
    ['{ "autoApprovers": { "routes": { "nas": ["alice"] } } }', 'autoApprovers.routes.nas', /not a prefix/, '1:34'],
    ['{ "autoApprovers": { "exitNode": ["autogroup:member"] } }', 'autoApprovers.exitNode[0]', /autogroup cannot/, '1:35'],
    ['{ "tests": [{ "src": "*", "accept": [] }] }', 'tests[0].src', /one user, tag, host or address/, '1:22'],
    ['{ "tests": [{ "src": "alice", "accept": ["bob:22-23"] }] }', 'tests[0].accept[0]', /one port/, '1:42'],
    ['{ "tests": [{ "accept": [] }] }', 'tests[0].src', /missing/, '1:13'],
  ];
  for (const [text, field, reason, at] of cases) {
    const e = refusal(text);
    assert.equal(e.field, field, text);
    assert.match(e.reason, reason, text);
    assert.equal(`${e.line}:${e.col}`, at, `${text}: ${e.message}`);
    assert.match(e.message, new RegExp(`\\(line ${e.line}:${e.col}\\)$`));
  }
});

test('bounds: file size, acl entries and sources, by their named constants', () => {
  assert.match(refusal(' '.repeat(MAX_POLICY_BYTES + 1)).reason, new RegExp(`larger than ${MAX_POLICY_BYTES}`));
  const many = Array.from({ length: MAX_POLICY_ACLS + 1 }, () => '{"action":"accept","src":["*"],"dst":["*:*"]}').join(',');
  assert.match(refusal(`{"acls":[${many}]}`).reason, new RegExp(`more than the ${MAX_POLICY_ACLS}`));
  const srcs = Array.from({ length: MAX_ACL_SOURCES + 1 }, () => '"alice"').join(',');
  assert.match(refusal(acl('alice:*', srcs)).reason, new RegExp(`more than the ${MAX_ACL_SOURCES}`));
});

test('tests section: a policy whose tests fail is refused, naming each failing test', () => {
  const base = (tests: string): string =>
    `{ "tagOwners": {"tag:nas": []}, "acls": [{"action":"accept","src":["alice"],"dst":["tag:nas:22"]},
      {"action":"accept","src":["autogroup:member"],"dst":["autogroup:self:*"]}], "tests": [${tests}] }`;
  assert.equal(loadPolicy(base('{"src":"alice","accept":["tag:nas:22","alice:3000"],"deny":["tag:nas:5432","bob:22"]}')).tests.length, 1);
  assert.throws(
    () => loadPolicy(base('{"src":"alice","accept":["tag:nas:5432"]}, {"src":"bob","deny":["bob:22"]}')),
    (e: unknown) =>
      e instanceof PolicyTestError &&
      e.failures.length === 2 &&
      /tests\[0\]: alice -> tag:nas:5432 is denied, the test says accept/.test(e.failures[0]!) &&
      /tests\[1\]: bob -> bob:22 is accepted, the test says deny/.test(e.failures[1]!),
  );
  // a protocol other than TCP does not accept a test's (TCP) connection
  assert.throws(
    () => loadPolicy(`{"acls":[{"action":"accept","src":["alice"],"dst":["bob:53"],"proto":"udp"}],"tests":[{"src":"alice","accept":["bob:53"]}]}`),
    PolicyTestError,
  );
});
