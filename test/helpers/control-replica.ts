// A control replica in a process of its own, so a test can kill it with
// SIGKILL (no clean shutdown: its presence leases stay until they expire, its
// streams are cut). Run as `node control-replica.js DBURL STATEDIR LEASE_TTL_MS RENEW_MS`;
// prints one JSON line with the port once it listens.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ControlServer } from '../../src/control/server.js';

export interface ReplicaProcess {
  child: ChildProcess;
  url: string;
  kill(): Promise<void>;
}

/** Starts a replica process on `dbUrl` with `stateDir`; resolves once it listens. */
export function spawnReplica(dbUrl: string, stateDir: string, leaseTtlMs: number, renewMs: number): Promise<ReplicaProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), dbUrl, stateDir, String(leaseTtlMs), String(renewMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    let buf = '';
    child.once('exit', (code) => reject(new Error(`replica process exited (${code}) before it listened`)));
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const { port } = JSON.parse(buf.slice(0, nl)) as { port: number };
      resolve({
        child,
        url: `https://127.0.0.1:${port}`,
        kill: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
      });
    });
  });
}

async function main(dbUrl: string, stateDir: string, ttl: string, renew: string): Promise<void> {
  const server = new ControlServer({
    host: '127.0.0.1',
    port: 0,
    stateDir,
    db: { url: dbUrl },
    replica: { leaseTtlMs: Number(ttl), renewMs: Number(renew) },
  });
  await server.start();
  process.stdout.write(`${JSON.stringify({ port: server.boundPort })}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dbUrl, stateDir, ttl, renew] = process.argv.slice(2) as [string, string, string, string];
  main(dbUrl, stateDir, ttl, renew).catch((err: Error) => {
    process.stderr.write(`replica: ${err.message}\n`);
    process.exit(1);
  });
}
