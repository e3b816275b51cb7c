// Exit status 7 (TIMEOUT) through bin/meshctl against a local API server with
// a backend double on a real unix socket: a ping that gets no pong, and an `up`
// whose daemon reports a timeout (no network map in time). Scripts tell this
// status apart from "unreachable" (5) and from other failures (1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT } from '../../src/cli/errors.js';
import { LocalApiServer } from '../../src/daemon/localapi-server.js';
import { ApiError, type Status, type UpRequest } from '../../src/localapi/types.js';
import { BackendDouble, meshctlCli, socketDir } from '../daemon/localapi-helpers.js';

const meshctl = meshctlCli;

class TimingOutBackend extends BackendDouble {
  override async up(req: UpRequest, progress: (msg: string) => void): Promise<Status> {
    this.calls.push(`up ${JSON.stringify(req)}`);
    progress('waiting for the network map');
    throw new ApiError('TIMEOUT', 'no network map within 2000 ms: the control server did not answer');
  }
}

test('exit 7: a ping with no pong, and an up that times out, each with one line saying so', async () => {
  assert.equal(EXIT.TIMEOUT, 7);
  const { sock, done } = socketDir();
  const configDir = mkdtempSync(join(tmpdir(), 'meshctl-cli-'));
  const backend = new TimingOutBackend();
  const api = new LocalApiServer(sock, backend, { logger: () => {} });
  await api.start();
  try {
    const ping = await meshctl(['--socket', sock, 'ping', 'peer1', '-c', '1', '--timeout', '1s'], configDir);
    assert.equal(ping.code, 7, `ping: ${ping.err}`);
    assert.match(ping.out, /timeout waiting for pong from peer1/);
    assert.match(ping.err, /no reply/);
    assert.equal(ping.err.trim().split('\n').length, 1, ping.err);
    assert.deepEqual(backend.calls, ['ping peer1 1000']);

    const up = await meshctl(['--socket', sock, 'up'], configDir);
    assert.equal(up.code, 7, `up: ${up.err}`);
    assert.match(up.err, /no network map within 2000 ms/);
    assert.ok(
      backend.calls.some((c) => c.startsWith('up ')),
      JSON.stringify(backend.calls),
    );
  } finally {
    await api.stop();
    done();
    rmSync(configDir, { recursive: true, force: true });
  }
});
