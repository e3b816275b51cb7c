// Local HTTP servers on unix sockets (src/util/unix-http.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeUnix, listenUnix } from '../../src/util/unix-http.js';

test('a unix-socket server has the asked mode, sends no Date header, and close removes the socket', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-unix-'));
  const path = join(dir, 's.sock');
  try {
    const server = await listenUnix(path, 0o600, (_req, res) => res.end('ok'));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = request({ socketPath: path, path: '/' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(headers.date, undefined, 'no Date header (its formatting maps ICU time-zone data)');
    await closeUnix(server, path);
    assert.equal(existsSync(path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
