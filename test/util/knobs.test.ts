// The environment knobs (src/util/knobs.ts): every MESHCTL_* name in the
// sources is declared there, only that module reads them from the environment,
// meshctl(1) lists each one, the documented defaults are the code's, and the
// getters read what the callers read before they shared one module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import {
  aeadChoice,
  daemonNodeArgs,
  jitDefaults,
  knobMs,
  KNOBS,
  knobText,
  plainOutput,
  readerModeKnob,
  readerRetireMs,
  socketFromEnv,
  tunOffloadWanted,
  udpGsoWanted,
  udpGroWanted,
  type KnobName,
} from '../../src/util/knobs.js';
import { DEFAULT_SOCKET, DEFAULT_STATE_DIR } from '../../src/localapi/types.js';
import { DEFAULT_CONTROL_STATE_DIR } from '../../src/cli/control.js';
import { DEFAULT_RELAY_STATE_DIR } from '../../src/cli/relay.js';
import { DEFAULT_TIMERS } from '../../src/engine/device/constants.js';
import { DEFAULT_PATH_TIMERS } from '../../src/engine/paths/paths.js';
import { QUIET_MS } from '../../src/util/idle-memory.js';
import { RETIRE_AFTER_MS } from '../../src/util/reader-mode.js';

const root = packageRoot();
const KNOBS_FILE = join('src', 'util', 'knobs.ts');

function sources(dir: string): string[] {
  let out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(sources(p));
    else if (/\.tsx?$/.test(e)) out.push(p);
  }
  return out;
}

const declared = new Set<string>(Object.keys(KNOBS));

test('every MESHCTL_ name in src/ is declared in util/knobs.ts', () => {
  const missing: string[] = [];
  for (const f of sources(join(root, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/MESHCTL_[A-Z0-9_]+/g)) {
      if (!declared.has(m[0])) missing.push(`${relative(root, f)}: ${m[0]}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('no module but util/knobs.ts reads a MESHCTL_ variable from the environment', () => {
  const readers: string[] = [];
  for (const f of sources(join(root, 'src'))) {
    if (relative(root, f) === KNOBS_FILE) continue;
    const lines = readFileSync(f, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/env\s*(\.\s*MESHCTL_|\[\s*['"`]MESHCTL_)/.test(line)) readers.push(`${relative(root, f)}:${i + 1}`);
    });
  }
  assert.deepEqual(readers, []);
});

test('meshctl(1) lists every knob in ENVIRONMENT and says which hold secrets', () => {
  // roff font changes (\fB…\fR) removed, so names are whole words
  const man = readFileSync(join(root, 'man', 'meshctl.1'), 'utf8').replace(/\\f[BIRP]/g, '');
  const env = man.slice(man.indexOf('.SH ENVIRONMENT'), man.indexOf('.SH', man.indexOf('.SH ENVIRONMENT') + 1));
  for (const name of declared) assert.match(env, new RegExp(`(?<![A-Z0-9_])${name}(?![A-Z0-9_])`), `${name} missing from meshctl(1) ENVIRONMENT`);
  for (const [name, spec] of Object.entries(KNOBS)) {
    if (spec.use !== 'secret') continue;
    const entry = env.slice(env.indexOf(`.B ${name}\n`), env.indexOf('.TP', env.indexOf(`.B ${name}\n`)));
    assert.match(entry, /secret/i, `${name} is not called a secret in meshctl(1)`);
  }
});

test("the documented defaults are the code's", () => {
  const d = (name: KnobName): string => KNOBS[name].default;
  assert.equal(d('MESHCTL_SOCKET'), DEFAULT_SOCKET);
  assert.equal(d('MESHCTL_STATE_DIR'), DEFAULT_STATE_DIR);
  assert.equal(d('MESHCTL_CONTROL_STATE_DIR'), DEFAULT_CONTROL_STATE_DIR);
  assert.equal(d('MESHCTL_RELAY_STATE_DIR'), DEFAULT_RELAY_STATE_DIR);
  assert.equal(d('MESHCTL_REKEY_AFTER_TIME_MS'), String(DEFAULT_TIMERS.rekeyAfterTimeMs));
  assert.equal(d('MESHCTL_REJECT_AFTER_TIME_MS'), String(DEFAULT_TIMERS.rejectAfterTimeMs));
  assert.equal(d('MESHCTL_KEEPALIVE_TIMEOUT_MS'), String(DEFAULT_TIMERS.keepaliveTimeoutMs));
  assert.equal(d('MESHCTL_REKEY_TIMEOUT_MS'), String(DEFAULT_TIMERS.rekeyTimeoutMs));
  assert.equal(d('MESHCTL_PATH_HEARTBEAT_MS'), String(DEFAULT_PATH_TIMERS.heartbeatMs));
  assert.equal(d('MESHCTL_PATH_TRUST_MS'), String(DEFAULT_PATH_TIMERS.trustMs));
  assert.equal(d('MESHCTL_IDLE_RELEASE_MS'), String(QUIET_MS));
  assert.equal(d('MESHCTL_READER_RETIRE_MS'), String(RETIRE_AFTER_MS));
});

test('getters: empty is unset, and each reads its variable as its callers did', () => {
  assert.equal(knobText('MESHCTL_SOCKET', {}), undefined);
  assert.equal(socketFromEnv({ MESHCTL_SOCKET: '' }), undefined);
  assert.equal(socketFromEnv({ MESHCTL_SOCKET: '/tmp/s' }), '/tmp/s');
  assert.equal(plainOutput({}), false);
  assert.equal(plainOutput({ MESHCTL_PLAIN: '' }), false);
  assert.equal(plainOutput({ MESHCTL_PLAIN: '0' }), true, 'any non-empty value');
  assert.deepEqual(daemonNodeArgs({}), []);
  assert.deepEqual(daemonNodeArgs({ MESHCTL_DAEMON_NODE_ARGS: ' --cpu-prof  --trace-gc ' }), ['--cpu-prof', '--trace-gc']);
  assert.equal(tunOffloadWanted({}), true);
  assert.equal(tunOffloadWanted({ MESHCTL_TUN_OFFLOAD: '0' }), false);
  assert.equal(tunOffloadWanted({ MESHCTL_TUN_OFFLOAD: 'no' }), true, 'only "0" turns offloads off');
  assert.equal(udpGsoWanted({}), true);
  assert.equal(udpGsoWanted({ MESHCTL_UDP_GSO: '0' }), false);
  assert.equal(udpGsoWanted({ MESHCTL_UDP_GSO: 'off' }), true, 'only "0" turns GSO off');
  assert.equal(udpGroWanted({}), true);
  assert.equal(udpGroWanted({ MESHCTL_UDP_GRO: '0' }), false);
  assert.equal(udpGroWanted({ MESHCTL_UDP_GRO: 'off' }), true, 'only "0" turns UDP GRO off');
  assert.equal(aeadChoice({ MESHCTL_AEAD: 'node' }), 'node');
  assert.equal(aeadChoice({ MESHCTL_AEAD: 'evp' }), 'evp');
  assert.equal(aeadChoice({}), 'sodium');
  assert.equal(aeadChoice({ MESHCTL_AEAD: 'other' }), 'sodium', 'an unknown value keeps the default');
  assert.equal(jitDefaults({ MESHCTL_JIT_DEFAULTS: '1' }), true);
  assert.equal(jitDefaults({ MESHCTL_JIT_DEFAULTS: 'yes' }), false);
  assert.equal(readerModeKnob({}), 'auto');
  assert.equal(readerModeKnob({ MESHCTL_READER_MODE: 'thread' }), 'thread');
  assert.equal(readerModeKnob({ MESHCTL_READER_MODE: 'bogus' }), 'auto');
  assert.equal(readerRetireMs({ MESHCTL_READER_RETIRE_MS: '300' }), 300);
  assert.equal(readerRetireMs({ MESHCTL_READER_RETIRE_MS: 'soon' }), undefined, 'a bad value falls back to the default');
  assert.equal(knobMs('MESHCTL_PATH_TRUST_MS', { MESHCTL_PATH_TRUST_MS: '' }), undefined);
  assert.equal(knobMs('MESHCTL_PATH_TRUST_MS', { MESHCTL_PATH_TRUST_MS: '2.5' }), 2.5);
  assert.throws(
    () => knobMs('MESHCTL_PATH_TRUST_MS', { MESHCTL_PATH_TRUST_MS: 'Infinity' }),
    /MESHCTL_PATH_TRUST_MS="Infinity" must be a positive number of milliseconds/,
  );
});
