// Shared by the local API tests: a Backend double (the local API's edge is what
// is tested, not the node), processes that act as another local user, and the
// root check those need.
import type { TestContext } from 'node:test';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DnsQueryResponse, DnsStatus, PingResponse, PrefsRequest, Status, UpRequest } from '../../src/localapi/types.js';
import type { LocalApiBackend } from '../../src/daemon/localapi-server.js';
import type { DaemonMetricsView } from '../../src/daemon/metrics.js';
import { packageRoot } from '../../src/cli/version.js';
import { skipTest } from '../helpers/ci.js';

const MESHCTL = join(packageRoot(), 'bin', 'meshctl');

export const NOBODY = 65534;
/** a second unprivileged uid; it needs no passwd entry */
export const OTHER_UID = 65533;

/** True when the test can act as other users. Elsewhere it skips loudly; in CI (CI set) a missing root is a failure. */
export function canSwitchUsers(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  const why = 'needs root to open connections as other uids (setuid)';
  skipTest(t, 'local API test', `${why}; run as root to include it`);
  return false;
}

/** A temp dir other users can traverse (the socket in it is mode 0666), removed with `done`. */
export function socketDir(): { dir: string; sock: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-localapi-'));
  chmodSync(dir, 0o755);
  return { dir, sock: join(dir, 's.sock'), done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** bin/meshctl as a child process with its own client config (asynchronously: the server it talks to may run in this process). */
export function meshctlCli(args: string[], configDir: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, MESHCTL_CONFIG_DIR: configDir, MESHCTL_PLAIN: '1' };
    const p = spawn(process.execPath, [MESHCTL, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

export class BackendDouble implements LocalApiBackend {
  calls: string[] = [];
  op: string | null = null;
  trust: { loginServer: string | null; controlCaPem: string | null } = { loginServer: null, controlCaPem: null };
  /** how long `up` works, silent after its first progress line, before it answers */
  upMs = 0;

  status(): Status {
    return {
      version: 'test',
      backendState: 'Stopped',
      self: null,
      control: { url: this.trust.loginServer, connected: false, lastError: null },
      peers: [],
      health: [],
      homeRegion: null,
      relays: [],
      counters: null,
    };
  }
  async netcheckReport(): Promise<never> {
    throw new Error('not in this test');
  }
  whois(): never {
    throw new Error('not in this test');
  }
  async ping(peer: string, timeoutMs: number): Promise<PingResponse> {
    this.calls.push(`ping ${peer} ${timeoutMs}`);
    return { name: peer, ip: '100.64.0.2', pong: null };
  }
  async up(req: UpRequest, progress: (msg: string) => void): Promise<Status> {
    this.calls.push(`up ${JSON.stringify(req)}`);
    progress('working');
    if (this.upMs) await new Promise((r) => setTimeout(r, this.upMs));
    if (req.loginServer) this.trust = { loginServer: req.loginServer, controlCaPem: req.controlCaPem ?? null };
    return this.status();
  }
  async down(): Promise<void> {
    this.calls.push('down');
  }
  async logout(): Promise<void> {
    this.calls.push('logout');
  }
  async setPrefs(r: PrefsRequest): Promise<void> {
    this.calls.push(`prefs ${JSON.stringify(r)}`);
    if (r.operator !== undefined) this.op = r.operator;
  }
  dnsStatus(): DnsStatus {
    return {
      enabled: true,
      acceptDns: true,
      suffix: 'mesh.internal',
      resolvers: ['100.100.100.100', 'fd7a:115c:a1e0::53'],
      listening: ['100.100.100.100:53', '[fd7a:115c:a1e0::53]:53'],
      mode: 'direct',
      why: '/etc/resolv.conf is a plain file',
      written: ['/etc/resolv.conf: nameserver 100.100.100.100'],
      upstreams: ['10.0.0.53:53'],
      routes: [{ domain: 'corp.example', resolvers: ['10.1.2.3'] }],
      records: 1,
      counters: { queries: 3, nxdomain: 1 },
      errors: [],
    };
  }
  /** answers by the name's first label: nx… NXDOMAIN, fail… SERVFAIL, refused… REFUSED, anything else one A record */
  async dnsQuery(name: string, type: string): Promise<DnsQueryResponse> {
    this.calls.push(`dns query ${name} ${type}`);
    const rcode = name.startsWith('nx') ? 'NXDOMAIN' : name.startsWith('fail') ? 'SERVFAIL' : name.startsWith('refused') ? 'REFUSED' : 'NOERROR';
    const answers = rcode === 'NOERROR' ? [{ name, type: 'A', ttl: 10, data: '100.64.0.5' }] : [];
    return { server: '100.100.100.100:53', name, type, rcode, answers, transport: 'udp', ms: 0.4 };
  }
  /** two peers direct, one relayed, one without a path; control connected; no engine (its counters are absent) */
  metricsView(): DaemonMetricsView {
    this.calls.push('metrics');
    return {
      backendState: 'Running',
      wantRunning: true,
      controlConnected: true,
      peerPaths: ['direct', 'direct', 'relay', 'none'],
      engine: null,
      relays: [{ region: 'r1', url: 'https://relay.example', connected: true, latencyMs: 3, lastError: null }],
      relayFrames: { sent: 5, received: 7, dropped: 0 },
      acl: null,
      droppedDestination: 0,
      dns: null,
    };
  }
  operator(): string | null {
    return this.op;
  }
  controlTrust(): { loginServer: string | null; controlCaPem: string | null } {
    return this.trust;
  }
}

export interface Answer {
  status: number;
  body: string;
}

/** One HTTP request on its own connection; the answer's status and whole body. */
export function call(sock: string, method: string, path: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method, path, headers: { host: 'meshctl', 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Runs as root, drops to the uid before it opens anything: SO_PEERCRED records the uid at connect time.
const DROP = `const uid = Number(process.argv[1]); process.setgroups([]); process.setgid(uid); process.setuid(uid);`;

/** Runs `script` (CommonJS, after dropping to `uid`) with `args` in process.argv[2..]; resolves with its stdout when it exits 0. */
export function runAs(uid: number, script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', `${DROP}\n${script}`, String(uid), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`uid ${uid} helper exited ${code}: ${err.trim()}`))));
  });
}

/** Requests made as `uid`, one after the other, each on its own connection. */
export async function callsAs(uid: number, sock: string, reqs: { method: string; path: string; body?: unknown }[]): Promise<Answer[]> {
  const script = `
const http = require('node:http');
const [sock, reqs] = [process.argv[2], JSON.parse(process.argv[3])];
(async () => {
  const out = [];
  for (const r of reqs) {
    out.push(await new Promise((resolve, reject) => {
      const req = http.request({ socketPath: sock, method: r.method, path: r.path, headers: { host: 'meshctl', 'content-type': 'application/json' } }, (res) => {
        let body = ''; res.setEncoding('utf8'); res.on('data', (c) => (body += c)); res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('error', reject);
      req.end(r.body === undefined ? undefined : JSON.stringify(r.body));
    }));
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e)); process.exit(1); });`;
  return JSON.parse(await runAs(uid, script, [sock, JSON.stringify(reqs)])) as Answer[];
}

/** A process of `uid` that opens `count` connections and holds every one the server keeps open. */
export class ConnectionHolder {
  private readonly child: ChildProcess;
  /** connections the server has not closed */
  held = 0;
  /** connections the server closed */
  closed = 0;
  /** the first thing a refused connection was told */
  refusal = '';
  private exited = false;

  constructor(uid: number, sock: string, count: number) {
    const script = `
const net = require('node:net');
const [sock, count] = [process.argv[2], Number(process.argv[3])];
let connected = 0, closed = 0, refusal = '';
const report = () => process.stdout.write(JSON.stringify({ held: connected - closed, closed, refusal }) + '\\n');
for (let i = 0; i < count; i++) {
  const s = net.connect(sock);
  let seen = '';
  s.on('connect', () => { connected++; report(); });
  s.on('data', (d) => { seen += d; });
  s.on('error', () => {});
  s.on('close', () => { if (!refusal && seen) refusal = seen.split('\\r\\n\\r\\n')[1] ?? seen; closed++; report(); });
}
setInterval(() => {}, 60000);`;
    this.child = spawn(process.execPath, ['-e', `${DROP}\n${script}`, String(uid), sock, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      buf += c;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      const last = lines.at(-1);
      if (last) Object.assign(this, JSON.parse(last) as { held: number; closed: number; refusal: string });
    });
    this.child.on('exit', () => (this.exited = true));
  }

  /** Waits until `done` holds of the counts (or the deadline passes, then the test's asserts say what is wrong). */
  async settle(done: (h: ConnectionHolder) => boolean, deadlineMs = 10_000): Promise<void> {
    const end = Date.now() + deadlineMs;
    while (!done(this) && !this.exited && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await gone;
  }
}

/** The real daemon (bin/meshctl), with a small fd table when `nofile` is given; its log and a way to stop it. */
export async function startDaemon(sock: string, stateDir: string, nofile?: number): Promise<{ log(): string; pid: number; stop(): Promise<void> }> {
  const daemon = [process.execPath, MESHCTL, '--socket', sock, 'daemon', '--state-dir', stateDir, '--port', '0'];
  const argv = nofile ? ['prlimit', `--nofile=${nofile}:${nofile}`, '--', ...daemon] : daemon;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (log += c));
  let exited = false;
  child.on('exit', () => (exited = true));
  const end = Date.now() + 15_000;
  while (!/listening on/.test(log) && !exited && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.match(log, /listening on/, `the daemon did not start: ${log}`);
  return {
    log: () => log,
    pid: child.pid!,
    stop: async () => {
      if (exited) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

/** `meshctl ARGS` as `uid`, with its own empty config dir; exit status and stderr. */
export function meshctlAs(uid: number, configDir: string, args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [MESHCTL, ...args], {
    uid,
    gid: uid,
    encoding: 'utf8',
    env: { ...process.env, MESHCTL_CONFIG_DIR: configDir, MESHCTL_PLAIN: '1' },
  });
  return { code: r.status, stderr: r.stderr };
}
