// `meshctl service install|uninstall` (src/cli/service.ts, service-unit.ts):
// systemd is not PID 1 here, so the life cycle runs in the foreground against
// a --unit-dir in a temp dir: the units pass `systemd-analyze verify`, flags
// are quoted in systemd's own syntax, secrets go to a 0600 file and never the
// unit, capabilities follow the role and its ports, --dry-run changes nothing
// and uninstall removes what install wrote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import { quoteExecArg, quoteEnvValue } from '../../src/cli/service-unit.js';

const BIN = join(packageRoot(), 'bin', 'meshctl');

function meshctl(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** systemd-analyze verify on one unit file: its complaints, or '' when it has none. */
function verify(unit: string): string {
  // --man=no: the man page is not installed in the test machine's man path
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
  if (r.error) throw new Error(`systemd-analyze: ${(r.error as NodeJS.ErrnoException).code}: install Debian's systemd package (deps/debian.json)`);
  return r.status === 0 ? '' : `${r.stdout}${r.stderr}`.trim();
}

function tmp(): { dir: string; units: string; env: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-service-'));
  return { dir, units: join(dir, 'units'), env: join(dir, 'env'), done: () => rmSync(dir, { recursive: true, force: true }) };
}

const execStart = (unit: string): string => /^ExecStart=(.*)$/m.exec(unit)![1]!;
const lines = (unit: string, key: string): string[] => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);

test('ExecStart words: plain ones as they are, others double-quoted; % and $ doubled; control characters refused', () => {
  assert.equal(quoteExecArg('--listen'), '--listen');
  assert.equal(quoteExecArg('0.0.0.0:443'), '0.0.0.0:443');
  assert.equal(quoteExecArg('/etc/my certs/c.pem'), '"/etc/my certs/c.pem"');
  assert.equal(quoteExecArg('100%'), '100%%');
  assert.equal(quoteExecArg('$HOME'), '$$HOME');
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${X}, as a unit's ExecStart would see it
  assert.equal(quoteExecArg('a "b" \\c ${X} %h'), '"a \\"b\\" \\\\c $${X} %%h"');
  assert.equal(quoteExecArg("it's"), '"it\'s"');
  assert.equal(quoteExecArg(';'), '\\;');
  for (const bad of ['a\nb', 'a\rb', 'tab\t', '\x1b[2J']) assert.throws(() => quoteExecArg(bad), /control character/);
  assert.equal(quoteEnvValue('k$y"`\\'), '"k\\$y\\"\\`\\\\"');
  assert.throws(() => quoteEnvValue('a\nB=1'), /control character/);
});

test('the three units pass systemd-analyze verify, with the capabilities, devices and paths each role needs', () => {
  const t = tmp();
  try {
    const cases: [string, string[]][] = [
      ['node', []],
      ['control', ['--listen', '[::]:8443', '--tls-cert', '/etc/my certs/c%d.pem', '--tls-key', '/etc/k$1.pem']],
      ['relay', ['--region', 'fra', '--mesh-with', 'https://r2:443?fingerprint=ab']],
    ];
    for (const [role, flags] of cases) {
      const r = meshctl(['service', 'install', role, '--unit-dir', t.units, '--env-dir', t.env, '--', ...flags]);
      assert.equal(r.code, 0, r.stderr);
      const file = join(t.units, `meshctl-${role}.service`);
      assert.equal(verify(file), '', `${role}: systemd-analyze verify`);
      const unit = readFileSync(file, 'utf8');
      assert.equal(statSync(file).mode & 0o777, 0o644);
      for (const k of [
        'Type=notify',
        'Restart=on-failure',
        `StateDirectory=meshctl-${role}`,
        'NoNewPrivileges=yes',
        'ProtectSystem=strict',
        'ProtectHome=yes',
        'PrivateTmp=yes',
      ])
        assert.match(unit, new RegExp(`^${k.replace(/[.]/g, '\\.')}$`, 'm'), `${role}: ${k}`);
      assert.ok(execStart(unit).includes(`--state-dir /var/lib/meshctl-${role}`), `${role}: state under /var/lib/meshctl-${role}`);
      // every directive line is explained by a comment just above it (or the one before, for a group)
      const body = unit.split('\n');
      for (let i = 0; i < body.length; i++) {
        if (/^(ExecStart|CapabilityBoundingSet|DeviceAllow|ReadWritePaths|ProtectSystem|Type)=/.test(body[i]!))
          assert.ok(
            body.slice(Math.max(0, i - 3), i).some((x) => x.startsWith('#')),
            `${role}: ${body[i]} has a comment`,
          );
      }
    }
    const node = readFileSync(join(t.units, 'meshctl-node.service'), 'utf8');
    assert.deepEqual(lines(node, 'CapabilityBoundingSet'), ['CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE']);
    assert.deepEqual(lines(node, 'DeviceAllow'), ['/dev/net/tun rw']);
    assert.deepEqual(lines(node, 'PrivateDevices'), []);
    assert.deepEqual(lines(node, 'ReadWritePaths'), ['/etc/resolv.conf -/run/systemd/resolve']);
    const control = readFileSync(join(t.units, 'meshctl-control.service'), 'utf8');
    assert.deepEqual(lines(control, 'CapabilityBoundingSet'), [''], 'control on 8443: no capabilities at all');
    assert.ok(execStart(control).endsWith('--listen "[::]:8443" --tls-cert "/etc/my certs/c%%d.pem" --tls-key /etc/k$$1.pem'), execStart(control));
    const relay = readFileSync(join(t.units, 'meshctl-relay.service'), 'utf8');
    assert.deepEqual(lines(relay, 'CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE'], 'relay on its default 443');
    assert.deepEqual(readdirSync(t.units).sort(), ['meshctl-control.service', 'meshctl-node.service', 'meshctl-relay.service']);
    assert.equal(existsSync(t.env), false, 'no secrets, no secrets file');
  } finally {
    t.done();
  }
});

test("the relay's mesh key goes to a 0600 EnvironmentFile, never into the unit; uninstall removes both", () => {
  const t = tmp();
  const secret = 'a-mesh-key-of-at-least-32-chars-$x"y';
  try {
    const r = meshctl(
      ['service', 'install', 'relay', '--unit-dir', t.units, '--env-dir', t.env, '--', '--region', 'fra', '--listen', '0.0.0.0:8443', '--stun-port', '3478'],
      {
        MESHCTL_RELAY_MESH_KEY: secret,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const unitFile = join(t.units, 'meshctl-relay.service');
    const envFile = join(t.env, 'relay.env');
    const unit = readFileSync(unitFile, 'utf8');
    assert.ok(!unit.includes('a-mesh-key'), 'the secret is not in the unit');
    assert.ok(!r.stdout.includes('a-mesh-key') && !r.stderr.includes('a-mesh-key'));
    assert.deepEqual(lines(unit, 'EnvironmentFile'), [envFile]);
    assert.equal(statSync(envFile).mode & 0o777, 0o600);
    assert.match(readFileSync(envFile, 'utf8'), /^MESHCTL_RELAY_MESH_KEY="a-mesh-key-of-at-least-32-chars-\\\$x\\"y"$/m);
    assert.deepEqual(lines(unit, 'CapabilityBoundingSet'), [''], 'no port below 1024: no capability');
    assert.equal(verify(unitFile), '');

    const u = meshctl(['service', 'uninstall', 'relay', '--unit-dir', t.units, '--env-dir', t.env]);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(existsSync(unitFile), false);
    assert.equal(existsSync(envFile), false);
    assert.match(u.stderr, /the state in \/var\/lib\/meshctl-relay is kept/);
  } finally {
    t.done();
  }
});

test('--dry-run prints the unit and the steps and changes nothing; bad flags are refused before anything is written', () => {
  const t = tmp();
  try {
    const d = meshctl(['service', 'install', 'control', '--dry-run', '--unit-dir', t.units, '--', '--listen', '0.0.0.0:443']);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /^would write .*meshctl-control\.service \(mode 0644\):\n# meshctl-control\.service: written by/);
    assert.match(d.stdout, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m, 'control on 443 gets only CAP_NET_BIND_SERVICE');
    assert.equal(existsSync(t.units), false);

    const refused: [string[], RegExp][] = [
      [['control', '--', '--listne', 'x'], /^control flags: unknown option '--listne'/],
      [['relay', '--', '--region', 'a\nExecStartPre=/bin/sh'], /^a relay flag has a control character/],
      [['node', '--', '--join', 'mesh1:x'], /^--join cannot go in a unit: join after installing: sudo meshctl up --join-file FILE/],
      [['router'], /^"router" is not a role: use node, control or relay/],
    ];
    for (const [args, re] of refused) {
      const r = meshctl(['service', 'install', '--unit-dir', t.units, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.trim(), re);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
    assert.equal(existsSync(t.units), false);

    // uninstall leaves a unit meshctl did not write alone
    const u = meshctl(['service', 'install', 'node', '--unit-dir', t.units]);
    assert.equal(u.code, 0, u.stderr);
    const dry = meshctl(['service', 'uninstall', 'node', '--dry-run', '--unit-dir', t.units]);
    assert.match(dry.stdout, /^would remove .*meshctl-node\.service$/m);
    assert.ok(existsSync(join(t.units, 'meshctl-node.service')));
    writeFileSync(join(t.units, 'meshctl-node.service'), '[Service]\nExecStart=/bin/true\n');
    const foreign = meshctl(['service', 'uninstall', 'node', '--unit-dir', t.units]);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /was not written by meshctl service install: remove it yourself/);
    assert.ok(existsSync(join(t.units, 'meshctl-node.service')));
  } finally {
    t.done();
  }
});
