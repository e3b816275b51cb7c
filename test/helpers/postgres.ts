// A throwaway PostgreSQL cluster for tests: initdb into a temp dir owned by
// the postgres user (initdb and postgres refuse to run as root, and CI runs as
// root), started with pg_ctl, listening only on a unix socket inside that dir
// (no TCP port, nothing outside the dir). `stop` stops it and removes the dir;
// `startPostgres` cleans up itself when a step fails. Without root or without
// the package the tests skip loudly, and fail in CI.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { skipOutsideCI } from './ci.js';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';
/** pg_ctl waits this long for the server to accept connections (a slow shared CI machine). */
const START_TIMEOUT_S = 60;

export interface PgCluster {
  /** the socket directory (also the data dir's parent) */
  dir: string;
  /** a postgres:// URL for `database`, over the unix socket, as the postgres superuser */
  url(database: string): string;
  /** runs psql as postgres on `database` */
  psql(database: string, sql: string): Promise<string>;
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** Why a cluster cannot be made here, or false; skips loudly (throws in CI). */
export function postgresSkipReason(): string | false {
  const why =
    process.getuid?.() !== 0
      ? 'needs root to run initdb as the postgres user (runuser)'
      : !existsSync(join(BIN, 'initdb'))
        ? `needs ${BIN}/initdb: apt-get install postgresql (listed in deps/debian.json)`
        : false;
  return why === false ? false : skipOutsideCI('PostgreSQL test', why);
}

async function asPostgres(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: '/' });
  return stdout;
}

export async function startPostgres(): Promise<PgCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-pg-'));
  const data = join(dir, 'data');
  const ids = await run('id', ['-u', 'postgres']).then(async (u) => [Number(u.stdout), Number((await run('id', ['-g', 'postgres'])).stdout)] as const);
  chownSync(dir, ids[0], ids[1]);
  let started = false;
  const stop = async (): Promise<void> => {
    if (started) await asPostgres(join(BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
    started = false;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await asPostgres(join(BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C']);
    const opts = `-c listen_addresses='' -c unix_socket_directories='${dir}' -c fsync=off -c max_connections=40`;
    started = true;
    await asPostgres(join(BIN, 'pg_ctl'), ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', String(START_TIMEOUT_S), 'start']);
  } catch (err) {
    await stop();
    throw err;
  }
  const psql = (db: string, sql: string): Promise<string> => asPostgres('/usr/bin/psql', ['-h', dir, '-U', 'postgres', '-d', db, '-Atq', '-c', sql]);
  return {
    dir,
    url: (db) => `postgres://postgres@localhost/${db}?host=${encodeURIComponent(dir)}`,
    psql,
    async createDatabase(name) {
      await psql('postgres', `CREATE DATABASE "${name}"`);
      return `postgres://postgres@localhost/${name}?host=${encodeURIComponent(dir)}`;
    },
    stop,
  };
}
