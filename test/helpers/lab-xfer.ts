// A TCP transfer between two lab nodes over the mesh: the tcp-xfer fixture's
// server in the receiver's namespace, its client in the sender's, both ends
// checked (exit codes, byte counts, SHA-256).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Lab } from '../../src/lab/lab.js';
import type { LabNode } from '../../src/lab/topology.js';
import { nodeStatus } from './lab-status.js';
import { sh } from './netns.js';
import { checkXfer, exitWithin, XFER_FIXTURE, type XferResult } from './xfer.js';

/** How long the fixture's server may take to listen. */
const SERVER_START_MS = 10_000;
/** How long the server may take to finish once the client has. */
const SERVER_FINISH_MS = 30_000;

export interface LabTransferOptions {
  /** the server's TCP port on the receiver's mesh address */
  port: number;
  /** how long the client may take to send everything */
  clientTimeoutMs: number;
  /** runs while the transfer is under way (a fault to apply mid-transfer) */
  during?: () => Promise<void>;
}

/** Sends `bytes` from `from` to `to`'s first mesh address and checks both ends. */
export async function labTransfer(l: Lab, from: LabNode, to: LabNode, bytes: number, o: LabTransferOptions): Promise<XferResult> {
  const ip = (await nodeStatus(l, to)).self!.ips[0]!;
  const server = spawn('ip', ['netns', 'exec', to.ns, process.execPath, XFER_FIXTURE, 'server', String(o.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  server.stdout.on('data', (d: Buffer) => (out += d.toString()));
  server.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    const deadline = Date.now() + SERVER_START_MS;
    while (!out.includes('listening') && server.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(out.includes('listening'), `the transfer server did not start: ${err}`);
    const client = sh('ip', ['netns', 'exec', from.ns, process.execPath, XFER_FIXTURE, 'client', ip, String(o.port), String(bytes)], o.clientTimeoutMs);
    if (o.during) await o.during();
    const c = await client;
    const code = await exitWithin(server, SERVER_FINISH_MS);
    return checkXfer(bytes, c, { code, out, err });
  } finally {
    server.kill('SIGKILL');
  }
}
