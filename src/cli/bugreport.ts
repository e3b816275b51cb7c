// `meshctl bugreport [--output FILE]`: one .tar.gz with what a bug report
// needs from this node: versions, status, netcheck, DNS status, the counters,
// the tail of the daemon's log, the interface's addresses and routes, the OS
// resolver configuration and the daemon's settings. Everything goes through
// one redactor (src/util/redact.ts) before it is archived: private keys,
// auth keys, join strings and anything shaped like a key or token become
// `[redacted]`; the node keys status lists are public and stay in full. What
// cannot be gathered (no daemon, no permission, no `ip`) is named in
// SUMMARY.txt and on stderr, and the rest is still written. Progress goes to
// stderr, the archive's path to stdout.
import type { Command } from 'commander';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { release, version as osVersion, arch, platform } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { writeFileSync } from '../util/cjs.js';
import { LOCALAPI, DEFAULT_IFNAME, DEFAULT_STATE_DIR, type Status } from '../localapi/types.js';
import { stateDirFromEnv } from '../util/knobs.js';
import { makeRedactor, type Redactor } from '../util/redact.js';
import { tarArchive, type TarMember } from '../util/tar.js';
import { findTool } from '../util/tools.js';
import { socketOf } from './context.js';
import { loadClientPrefs } from './client-prefs.js';
import { CliError } from './errors.js';
import { meshctlVersion } from './version.js';

/** Lines of the daemon log kept: a few minutes of a busy daemon, hours of a quiet one. */
export const DEFAULT_LOG_LINES = 2000;
/** Most log lines asked for: beyond this a report gets too large to attach. */
const MAX_LOG_LINES = 100_000;
/** Bytes read from the end of the daemon log at most, whatever the line count: a log is never taken into memory whole. */
const MAX_LOG_TAIL_BYTES = 8 * 1024 * 1024;
/** A local API answer larger than this is not one the daemon sends (a status of the largest map is a few MB). */
const MAX_API_RESPONSE_BYTES = 32 * 1024 * 1024;
/** status and dns status answer at once from memory; a daemon that takes longer is itself the bug. */
const API_TIMEOUT_MS = 5_000;
/** netcheck may probe STUN and every relay region before it answers. */
const NETCHECK_TIMEOUT_MS = 15_000;
/** `ip` and `wireguard-go --version` answer at once. */
const COMMAND_TIMEOUT_MS = 5_000;
/** Output kept of one command: routes of a full table fit. */
const MAX_COMMAND_OUTPUT_BYTES = 16 * 1024 * 1024;
/** resolv.conf and state.json as read: resolv.conf is a few lines; state.json is bounded by the daemon too (src/daemon/state.ts). */
const MAX_SMALL_FILE_BYTES = 1024 * 1024;
const MAX_STATE_FILE_BYTES = 32 * 1024 * 1024;
/** Interface names as Linux allows them (IFNAMSIZ). */
const IFNAME_RE = /^[A-Za-z0-9_.:-]{1,15}$/;

export interface BugreportOptions {
  socket: string;
  stateDir: string;
  output: string;
  logLines: number;
  resolvConf?: string;
  progress?: (msg: string) => void;
  nowMs?: number;
  apiTimeoutMs?: number;
  netcheckTimeoutMs?: number;
}

export interface BugreportResult {
  path: string;
  members: string[];
  missing: string[];
}

/** One GET on the daemon's local API, bounded in time and size (the CLI's client waits as long as the daemon does). */
function apiGet(socket: string, path: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      { createConnection: () => connect(socket), method: 'GET', path, headers: { host: 'meshctl' }, signal: AbortSignal.timeout(timeoutMs) },
      (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > MAX_API_RESPONSE_BYTES) return void req.destroy(new Error(`answer larger than ${MAX_API_RESPONSE_BYTES} bytes`));
          chunks.push(c);
        });
        res.on('end', () => {
          try {
            const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            if (res.statusCode === 200) resolvePromise(v);
            else reject(new Error(String((v as { error?: { message?: unknown } })?.error?.message ?? `HTTP ${res.statusCode}`)));
          } catch {
            reject(new Error(`the daemon answered ${res.statusCode} with non-JSON`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new Error(`meshctl is stopped (no daemon at ${socket})`));
      else if (err.name === 'AbortError' || err.name === 'TimeoutError') reject(new Error(`no answer within ${timeoutMs / 1000}s`));
      else reject(err);
    });
    req.end();
  });
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(file, args, { timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_COMMAND_OUTPUT_BYTES, encoding: 'utf8' }, (err, out, errOut) => {
      if (err) reject(new Error(String(errOut).trim().split('\n')[0] || err.message));
      else resolvePromise(out);
    });
  });
}

/** Reads at most `max` bytes of `file` (from its end with `tail`), without taking a larger file into memory. */
function readBounded(file: string, max: number, tail = false): { text: string; cut: boolean } {
  const { openSync, fstatSync, readSync, closeSync } = process.getBuiltinModule('node:fs');
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const n = Math.min(size, max);
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, tail ? size - n : 0);
    return { text: buf.subarray(0, got).toString('utf8'), cut: size > max };
  } finally {
    closeSync(fd);
  }
}

const reason = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return `${e.path ?? 'file'} does not exist`;
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return `${e.path ?? 'file'}: permission denied (run as root)`;
  return (e?.message ?? String(err)).split('\n')[0]!;
};

/** The state dir of the daemon on `socket`: as given, else as `up` remembered it, else MESHCTL_STATE_DIR, else the default. */
export function defaultStateDir(socket: string): string {
  return loadClientPrefs().daemons?.[socket]?.stateDir ?? stateDirFromEnv() ?? DEFAULT_STATE_DIR;
}

export async function writeBugreport(o: BugreportOptions): Promise<BugreportResult> {
  const say = o.progress ?? (() => {});
  const now = o.nowMs ?? Date.now();
  const stamp = new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const dir = `meshctl-bugreport-${stamp}`;
  const missing: string[] = [];
  const raw: { name: string; text?: string; json?: unknown }[] = [];
  const miss = (what: string, err: unknown): void => {
    const line = `${what}: ${reason(err)}`;
    missing.push(line);
    say(`  missing ${line}`);
  };

  say('reading the daemon state');
  const secrets: string[] = [];
  const keep: string[] = [];
  let stateView: unknown = null;
  try {
    const st = JSON.parse(readBounded(join(o.stateDir, 'state.json'), MAX_STATE_FILE_BYTES).text) as Record<string, unknown>;
    for (const k of ['nodePrivateKey', 'discoPrivateKey']) if (typeof st[k] === 'string') secrets.push(st[k] as string);
    const { nodePrivateKey: _n, discoPrivateKey: _d, ...rest } = st;
    // this node's own public keys as control assigned them stay readable, as in status
    const node = rest.node as Record<string, unknown> | null | undefined;
    for (const k of ['nodeKey', 'discoKey']) if (typeof node?.[k] === 'string') keep.push(node[k] as string);
    const prefs = rest.prefs as Record<string, unknown> | undefined;
    // the pinned control certificate is public and long: its size says enough
    if (prefs && typeof prefs.controlCaPem === 'string') prefs.controlCaPem = `[${prefs.controlCaPem.length}-character PEM certificate]`;
    stateView = rest;
  } catch (err) {
    miss('state.json', err);
  }

  const apiTimeout = o.apiTimeoutMs ?? API_TIMEOUT_MS;
  say('asking the daemon for its status');
  let status: Status | null = null;
  try {
    status = (await apiGet(o.socket, LOCALAPI.status, apiTimeout)) as Status;
    if (status.self?.nodeKey) keep.push(status.self.nodeKey);
    for (const p of status.peers ?? []) if (typeof p.nodeKey === 'string') keep.push(p.nodeKey);
    raw.push({ name: 'status.json', json: status }, { name: 'counters.json', json: status.counters ?? null });
  } catch (err) {
    miss('status', err);
  }
  if (status) {
    say('running netcheck');
    try {
      raw.push({ name: 'netcheck.json', json: await apiGet(o.socket, LOCALAPI.netcheck, o.netcheckTimeoutMs ?? NETCHECK_TIMEOUT_MS) });
    } catch (err) {
      miss('netcheck', err);
    }
    say('asking for the DNS status');
    try {
      raw.push({ name: 'dns-status.json', json: await apiGet(o.socket, LOCALAPI.dnsStatus, apiTimeout) });
    } catch (err) {
      miss('dns status', err);
    }
  } else {
    missing.push('netcheck, dns status, counters: need the daemon');
  }
  if (stateView !== null) raw.push({ name: 'state.json', json: stateView });

  say('reading the daemon log');
  try {
    const { text, cut } = readBounded(join(o.stateDir, 'daemon.log'), MAX_LOG_TAIL_BYTES, true);
    const lines = text.split('\n');
    if (cut) lines.shift(); // the first line read may start mid-line
    if (lines.at(-1) === '') lines.pop();
    raw.push({ name: 'daemon.log', text: `${lines.slice(-o.logLines).join('\n')}\n` });
  } catch (err) {
    miss('daemon.log', err);
  }

  say('collecting versions');
  const versions: Record<string, string | null> = {
    meshctl: meshctlVersion(),
    node: process.version,
    platform: `${platform()} ${arch()}`,
    kernel: `${release()} ${osVersion()}`,
    wireguardGo: null,
    iproute2: null,
  };
  if (findTool('wireguard-go'))
    versions.wireguardGo = (await run('wireguard-go', ['--version']).catch((e: Error) => `error: ${e.message}`)).trim().split('\n')[0]!;
  const ip = findTool('ip');
  if (ip) versions.iproute2 = (await run('ip', ['-V']).catch((e: Error) => `error: ${e.message}`)).trim();
  raw.push({ name: 'versions.json', json: versions });

  const ifname = status?.self?.ifname ?? (stateView as { prefs?: { ifname?: unknown } } | null)?.prefs?.ifname ?? DEFAULT_IFNAME;
  say(`reading interface ${String(ifname)}: addresses and routes`);
  if (!ip) missing.push('interface: `ip` is not installed (Debian package iproute2)');
  else if (typeof ifname !== 'string' || !IFNAME_RE.test(ifname)) missing.push('interface: the daemon reports no valid interface name');
  else {
    const iface: Record<string, unknown> = {};
    const cmds: [string, string[]][] = [
      ['addresses', ['-json', 'address', 'show', 'dev', ifname]],
      ['routes4', ['-json', '-4', 'route', 'show', 'table', 'all', 'dev', ifname]],
      ['routes6', ['-json', '-6', 'route', 'show', 'table', 'all', 'dev', ifname]],
      ['rules4', ['-json', '-4', 'rule', 'show']],
      ['rules6', ['-json', '-6', 'rule', 'show']],
    ];
    for (const [k, args] of cmds) {
      try {
        const out = await run('ip', args);
        iface[k] = out.trim() ? JSON.parse(out) : [];
      } catch (err) {
        miss(`interface ${k} (ip ${args.join(' ')})`, err);
      }
    }
    raw.push({ name: 'interface.json', json: { ifname, ...iface } });
  }

  say('reading the OS resolver configuration');
  const resolvConf = o.resolvConf ?? '/etc/resolv.conf';
  try {
    raw.push({ name: 'resolv.conf', text: readBounded(resolvConf, MAX_SMALL_FILE_BYTES).text });
  } catch (err) {
    miss('resolv.conf', err);
  }

  const r: Redactor = makeRedactor(secrets, keep);
  const summary = [
    `meshctl bug report, ${new Date(now).toISOString()}`,
    `socket: ${o.socket}`,
    `state dir: ${o.stateDir}`,
    '',
    'Secrets are replaced by [redacted]: private keys, auth keys, join strings, tokens, and anything shaped like a key',
    '(32 bytes in base64, long hex or base64 runs). Public keys are kept in full: the node keys status lists, and this',
    "node's node and disco keys as control assigned them.",
    '',
    missing.length ? 'Not included:' : 'Everything was gathered.',
    ...missing.map((m) => `  - ${m}`),
    '',
  ].join('\n');
  const members: TarMember[] = [{ name: `${dir}/SUMMARY.txt`, data: Buffer.from(r.text(summary)), mtimeMs: now }];
  for (const m of raw) {
    const text = m.text !== undefined ? r.text(m.text) : `${JSON.stringify(r.json(m.json), null, 2)}\n`;
    members.push({ name: `${dir}/${m.name}`, data: Buffer.from(text), mtimeMs: now });
  }
  const path = resolve(o.output);
  say(`writing ${path}`);
  try {
    // 0600: the report names the network's addresses and peers
    writeFileSync(path, gzipSync(tarArchive(members)), { mode: 0o600 });
  } catch (err) {
    throw new CliError('FAILURE', `cannot write ${path}: ${reason(err)}; choose another place with --output FILE`);
  }
  return { path, members: members.map((m) => m.name), missing };
}

function logLinesArg(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > MAX_LOG_LINES) throw new CliError('USAGE', `--log-lines: "${v}" is not a number from 1 to ${MAX_LOG_LINES}`);
  return n;
}

export function registerBugreport(program: Command): void {
  program
    .command('bugreport')
    .description('write one .tar.gz for a bug report: versions, status, netcheck, DNS, counters, daemon log, interface, routes (secrets redacted)')
    .option('--output <file>', 'where to write it (default: meshctl-bugreport-TIME.tar.gz in the current directory)')
    .option('--state-dir <dir>', "the daemon's state directory (default: the one `up` used for this socket)")
    .option('--log-lines <n>', `lines of the daemon log to include (default ${DEFAULT_LOG_LINES})`, logLinesArg, DEFAULT_LOG_LINES)
    .action(async (o: { output?: string; stateDir?: string; logLines: number }, cmd: Command) => {
      const socket = socketOf(cmd);
      const stamp = new Date()
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z');
      const res = await writeBugreport({
        socket,
        stateDir: o.stateDir ?? defaultStateDir(socket),
        output: o.output ?? `meshctl-bugreport-${stamp}.tar.gz`,
        logLines: o.logLines,
        progress: (m) => void process.stderr.write(`${m}\n`),
      });
      if (res.missing.length) process.stderr.write(`the report is partial: ${res.missing.length} part(s) missing (listed in SUMMARY.txt)\n`);
      process.stdout.write(`${res.path}\n`);
    });
}
