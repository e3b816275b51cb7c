import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadControlConfig } from '../../src/control/config.js';

test('the control config file: relay regions with several relays, durations, clear errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-cfg-'));
  const f = join(dir, 'control.json');
  try {
    writeFileSync(
      f,
      JSON.stringify({
        relays: [
          { region: 'home', url: 'https://r1:443' },
          { region: 'home', url: 'https://r2:443/', stunPort: 3479 },
        ],
        keyExpiry: '90d',
        dnsSuffix: 'Home.Example',
      }),
    );
    assert.deepEqual(loadControlConfig(f), {
      relays: [
        { code: 'home', url: 'https://r1:443', stunPort: 3478 },
        { code: 'home', url: 'https://r2:443', stunPort: 3479 },
      ],
      keyExpiryMs: 90 * 86_400_000,
      ephemeralGraceMs: undefined,
      dnsSuffix: 'home.example',
    });
    for (const [bad, why] of [
      [{ relays: {} }, /must be a list/],
      [{ relays: [{ region: 'Home', url: 'https://r' }] }, /region must be/],
      [{ relays: [{ region: 'h', url: 'http://r' }] }, /url must be https/],
      [{ relays: [{ region: 'h', url: 'https://r', stunPort: 0 }] }, /stunPort/],
      [{ keyExpiry: 'soon' }, /keyExpiry/],
      [{ dnsSuffix: 'internal' }, /"dnsSuffix" is not a DNS suffix \(at least 2 labels/],
      [{ dnsSuffix: 'mesh.internal\nsearch evil' }, /"dnsSuffix" is not a DNS suffix/],
      [{ dnsSuffix: 5 }, /"dnsSuffix" is not a DNS suffix \(not a string\)/],
    ] as const) {
      writeFileSync(f, JSON.stringify(bad));
      assert.throws(
        () => loadControlConfig(f),
        (e: Error) => e instanceof ConfigError && why.test(e.message),
      );
    }
    writeFileSync(f, '{ not json');
    assert.throws(() => loadControlConfig(f), ConfigError);
    assert.throws(() => loadControlConfig(join(dir, 'missing.json')), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
