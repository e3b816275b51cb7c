import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findEngines, parseWgVersion, probeWireguardGo } from '../../bench/engines.js';

const UPSTREAM_OUT = 'wireguard-go v0.0.20250522\n\nUserspace WireGuard daemon for linux-amd64.\nInformation available at https://www.wireguard.com.\n';

test('wireguard-go --version: the version is read from its first line, anything else is no version', () => {
  assert.equal(parseWgVersion(UPSTREAM_OUT), 'v0.0.20250522');
  assert.equal(parseWgVersion('wireguard-go v0.0.20220316\n'), 'v0.0.20220316');
  assert.equal(parseWgVersion('Usage: wireguard-go [-f/--foreground] INTERFACE-NAME\n'), null);
  assert.equal(parseWgVersion(''), null);
});

test('engines: a missing reference is named with how to build it, and the bench goes on with the columns found', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-engines-'));
  try {
    const fake = join(dir, 'wireguard-go');
    writeFileSync(fake, `#!/bin/sh\nprintf '${UPSTREAM_OUT.replace(/\n/g, '\\n')}'\n`);
    chmodSync(fake, 0o755);
    assert.deepEqual(probeWireguardGo(fake), { version: 'v0.0.20250522' });
    const set = findEngines(join(dir, 'absent'), fake);
    assert.equal(set.upstream, null);
    assert.deepEqual(
      set.engines.map((e) => [e.id, e.binary]),
      [
        ['meshctl', undefined],
        ['debian', fake],
      ],
    );
    assert.match(set.header[0]!, /MISSING: .*absent is not there/);
    assert.match(set.header[0]!, /build upstream wireguard-go 0\.0\.20250522 with Go and install it as \/usr\/local\/bin\/wireguard-go-upstream/);
    const both = findEngines(fake, fake);
    assert.deepEqual(
      both.engines.map((e) => e.id),
      ['meshctl', 'upstream', 'debian'],
    );
    assert.equal(both.upstream!.label, 'wireguard-go upstream (0.0.20250522)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
