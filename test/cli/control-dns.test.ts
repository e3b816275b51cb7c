// `meshctl control dns …` and `control serve --dns-suffix` as a user runs
// them: the real binary against a real control server on loopback (through its
// admin socket), exit codes, one-line errors, --json, and the help text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oneLine, runCli } from '../helpers/cli-run.js';
import { harness } from '../control/helpers.js';

const run = runCli;

test('help text names the dns commands and --dns-suffix', async () => {
  const dns = await run('control', 'dns', '--help');
  assert.equal(dns.code, 0);
  for (const c of ['show', 'route', 'record']) assert.match(dns.out, new RegExp(`^\\s+${c}\\b`, 'm'), c);
  const add = await run('control', 'dns', 'route', 'add', '--help');
  assert.match(add.out, /add \[options\] <domain> <resolvers\.\.\.>/);
  assert.match((await run('control', 'dns', 'record', '--help')).out, /^\s+remove \[options\] <name> \[address\]/m);
  assert.match((await run('control', 'serve', '--help')).out, /--dns-suffix <suffix>/);
});

test('a bad --dns-suffix is refused before anything starts: exit 2, one line naming the fix', async () => {
  for (const bad of ['internal', 'mesh..internal', 'mesh.internal.', 'me_sh.internal']) {
    const r = await run('control', 'serve', '--dns-suffix', bad, '--state-dir', '/nonexistent/meshctl-control');
    assert.equal(r.code, 2, `${bad}: ${r.err}`);
    oneLine(r.err);
    assert.match(r.err, /is not a DNS suffix: .*use a name such as mesh\.internal/);
  }
});

test('control dns route/record/show against a running server', async () => {
  const h = await harness({ dnsSuffix: 'home.example' });
  try {
    const dir = ['--state-dir', h.dir];
    const added = await run('control', 'dns', 'route', 'add', 'corp.example', '10.1.2.3,10.1.2.4:5353', '[fd00::1]:53', ...dir);
    assert.equal(added.code, 0, added.err);
    assert.equal(added.err, 'DNS route corp.example -> 10.1.2.3, 10.1.2.4:5353, [fd00::1]:53 added\n');
    assert.equal((await run('control', 'dns', 'record', 'add', 'nas.home.arpa', '100.64.0.5', ...dir)).code, 0);
    const rec = await run('control', 'dns', 'record', 'add', 'nas.home.arpa', 'fd00::5', '--json', ...dir);
    assert.deepEqual(JSON.parse(rec.out), { name: 'nas.home.arpa', type: 'AAAA', value: 'fd00::5', added: true });

    const json = JSON.parse((await run('control', 'dns', 'show', '--json', ...dir)).out) as Record<string, unknown>;
    assert.equal(json.suffix, 'home.example');
    assert.equal((json.resolvers as string[])[0], '100.100.100.100');
    assert.deepEqual(json.routes, [{ domain: 'corp.example', resolvers: ['10.1.2.3', '10.1.2.4:5353', '[fd00::1]:53'] }]);
    assert.equal((json.records as unknown[]).length, 2);
    const text = await run('control', 'dns', 'show', ...dir);
    assert.equal(text.code, 0);
    assert.match(text.out, /^suffix +home\.example$/m);
    assert.match(text.out, /^resolvers +100\.100\.100\.100, fd[0-9a-f:]+::53$/m);
    assert.match(text.out, /^corp\.example +10\.1\.2\.3, 10\.1\.2\.4:5353, \[fd00::1\]:53$/m);
    assert.match(text.out, /^nas\.home\.arpa +AAAA +fd00::5$/m);

    for (const [args, code, why] of [
      [['record', 'add', 'nas home.arpa', '10.0.0.1'], 2, /record name "nas home.arpa": labels are/],
      [['record', 'add', 'nas.home.arpa', '10.0.0.1:53'], 2, /not an IPv4 or IPv6 address/],
      [['route', 'add', 'x.home.example', '10.0.0.1'], 2, /inside the mesh suffix home\.example/],
      [['route', 'add', 'x.example', '100.100.100.100'], 2, /would loop/],
      [['route', 'remove', 'nope.example'], 4, /no DNS route for "nope\.example"/],
      [['record', 'remove', 'nope.example'], 4, /no DNS record "nope\.example"/],
    ] as const) {
      const r = await run('control', 'dns', ...args, ...dir);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`);
      oneLine(r.err);
      assert.match(r.err, why);
    }

    assert.equal((await run('control', 'dns', 'route', 'remove', 'CORP.example', ...dir)).err, 'DNS route corp.example removed\n');
    assert.equal((await run('control', 'dns', 'record', 'remove', 'nas.home.arpa', ...dir)).err, '2 DNS records of nas.home.arpa removed\n');
    const empty = await run('control', 'dns', 'show', ...dir);
    assert.match(empty.out, /^routes: none$/m);
    assert.match(empty.out, /^records: none$/m);
  } finally {
    await h.close();
  }
});
