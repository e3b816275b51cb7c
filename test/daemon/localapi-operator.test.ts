// What the operator (`meshctl set --operator`) may do: up, down, logout and
// ordinary prefs, but never choose which control server the daemon trusts (the
// login server, its CA) or name another operator; those are root's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalApiServer } from '../../src/daemon/localapi-server.js';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';
import { LOCALAPI } from '../../src/localapi/types.js';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BackendDouble, call, callsAs, canSwitchUsers, meshctlAs, NOBODY, OTHER_UID, socketDir, startDaemon, type Answer } from './localapi-helpers.js';

const SERVER = 'https://control.test:8443';
const PEM = createSelfSigned('control', ['control.test']).certPem;
const OTHER_PEM = createSelfSigned('evil', ['control.test']).certPem;

function errorOf(a: Answer): { code: string; message: string } {
  return (JSON.parse(a.body) as { error: { code: string; message: string } }).error;
}

test('the operator may up with the control server in use, down and set the hostname; switching server or CA, or naming the operator, needs root', async (t) => {
  if (!canSwitchUsers(t)) return;
  const backend = new BackendDouble();
  backend.op = String(NOBODY);
  backend.trust = { loginServer: SERVER, controlCaPem: PEM };
  const { sock, done } = socketDir();
  const api = new LocalApiServer(sock, backend, { logger: () => {} });
  await api.start();
  try {
    const up = (body: unknown): { method: string; path: string; body: unknown } => ({ method: 'POST', path: LOCALAPI.up, body });
    const [plain, same, sameCrlf, withKey, down, hostname] = await callsAs(NOBODY, sock, [
      up({}),
      up({ loginServer: SERVER, controlCaPem: PEM }),
      up({ loginServer: SERVER, controlCaPem: PEM.replace(/\n/g, '\r\n') }),
      up({ authKey: 'mskey-0123456789ab-' + 'c'.repeat(48), hostname: 'nas' }),
      { method: 'POST', path: LOCALAPI.down, body: {} },
      { method: 'POST', path: LOCALAPI.prefs, body: { hostname: 'nas2' } },
    ]);
    for (const [name, a] of Object.entries({ plain, same, sameCrlf, withKey, down, hostname })) assert.equal(a!.status, 200, `${name}: ${a!.body}`);
    assert.equal(backend.calls.length, 6);

    backend.calls = [];
    const [otherServer, otherCa, caWithoutOne, operator, clearOperator] = await callsAs(NOBODY, sock, [
      up({ loginServer: 'https://evil.test:8443' }),
      up({ controlCaPem: OTHER_PEM }),
      up({ loginServer: SERVER, controlCaPem: `${PEM}${OTHER_PEM}` }),
      { method: 'POST', path: LOCALAPI.prefs, body: { operator: '1000' } },
      { method: 'POST', path: LOCALAPI.prefs, body: { operator: null } },
    ]);
    assert.equal(otherServer!.status, 403);
    assert.deepEqual(errorOf(otherServer!), {
      code: 'PERMISSION',
      message: 'switching the login server needs root: sudo meshctl up --login-server https://evil.test:8443',
    });
    for (const a of [otherCa!, caWithoutOne!]) {
      assert.equal(a.status, 403, a.body);
      assert.match(
        errorOf(a).message,
        /^trusting another certificate for the login server needs root: sudo meshctl up --login-server https:\/\/control\.test:8443 --control-ca PEMFILE$/,
      );
    }
    for (const a of [operator!, clearOperator!]) {
      assert.equal(a.status, 403, a.body);
      assert.equal(errorOf(a).message, 'naming the operator needs root: sudo meshctl set --operator=USER');
    }
    assert.deepEqual(backend.calls, [], 'nothing refused reached the backend');

    // a user who is not the operator may change nothing; root may switch the server
    const [stranger] = await callsAs(OTHER_UID, sock, [up({})]);
    assert.equal(stranger!.status, 403);
    assert.match(errorOf(stranger!).message, /needs root or its operator/);
    const root = await call(sock, 'POST', LOCALAPI.up, JSON.stringify({ loginServer: 'https://other.test:8443', controlCaPem: OTHER_PEM }));
    assert.equal(root.status, 200, root.body);
    assert.equal(backend.trust.loginServer, 'https://other.test:8443');
  } finally {
    await api.stop();
    done();
  }
});

test('with no login server chosen yet, the operator cannot choose one', async (t) => {
  if (!canSwitchUsers(t)) return;
  const backend = new BackendDouble();
  backend.op = String(NOBODY);
  const { sock, done } = socketDir();
  const api = new LocalApiServer(sock, backend, { logger: () => {} });
  await api.start();
  try {
    const [first] = await callsAs(NOBODY, sock, [{ method: 'POST', path: LOCALAPI.up, body: { loginServer: SERVER, controlCaPem: PEM } }]);
    assert.equal(first!.status, 403, first!.body);
    assert.match(errorOf(first!).message, /^switching the login server needs root/);
  } finally {
    await api.stop();
    done();
  }
});

test('the real daemon and CLI: the operator runs down and up, and is told to use sudo to switch the login server', async (t) => {
  if (!canSwitchUsers(t)) return;
  const { dir, sock, done } = socketDir();
  const daemon = await startDaemon(sock, join(dir, 'state'));
  const config = join(dir, 'config');
  mkdirSync(config, { mode: 0o777 });
  chmodSync(config, 0o777);
  try {
    assert.equal(meshctlAs(0, config, ['--socket', sock, 'set', '--operator', String(NOBODY)]).code, 0);
    const down = meshctlAs(NOBODY, config, ['--socket', sock, 'down']);
    assert.equal(down.code, 0, down.stderr);
    const up = meshctlAs(NOBODY, config, ['--socket', sock, 'up', '--login-server', 'https://127.0.0.1:9', '--timeout', '2s']);
    assert.equal(up.code, 3, up.stderr);
    // (the progress line before it is the CLI's own)
    assert.match(up.stderr, /\nswitching the login server needs root: sudo meshctl up --login-server https:\/\/127\.0\.0\.1:9\n$/);
    const naming = meshctlAs(NOBODY, config, ['--socket', sock, 'set', '--operator', String(OTHER_UID)]);
    assert.equal(naming.code, 3, naming.stderr);
    assert.match(naming.stderr, /naming the operator needs root/);
    assert.doesNotMatch(daemon.log(), /internal error/);
  } finally {
    await daemon.stop();
    done();
  }
});

test("the operator may up with the pinned control key in use, never pin another one (a join string's pin is root's choice)", async (t) => {
  if (!canSwitchUsers(t)) return;
  const { certPin } = await import('../../src/crypto/spki-pin.js');
  const pin = certPin(PEM);
  const backend = new BackendDouble();
  backend.op = String(NOBODY);
  backend.trust = { loginServer: SERVER, controlCaPem: null, controlPin: pin } as typeof backend.trust;
  const { sock, done } = socketDir();
  const api = new LocalApiServer(sock, backend, { logger: () => {} });
  await api.start();
  try {
    const up = (body: unknown): { method: string; path: string; body: unknown } => ({ method: 'POST', path: LOCALAPI.up, body });
    const [same, other] = await callsAs(NOBODY, sock, [
      up({ loginServer: SERVER, controlPin: pin }),
      up({ loginServer: SERVER, controlPin: certPin(OTHER_PEM) }),
    ]);
    assert.equal(same!.status, 200, same!.body);
    assert.equal(other!.status, 403, other!.body);
    assert.equal(errorOf(other!).message, 'trusting another public key for the login server needs root: sudo meshctl up --join-file FILE');
    assert.equal(backend.calls.length, 1, 'the refused one never reached the backend');
  } finally {
    await api.stop();
    done();
  }
});
