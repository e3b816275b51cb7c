// A LAN segment of namespaces for mesh tests: one bridge, a control server and
// N nodes, each node's CLI run inside its namespace with its own socket,
// state dir and client config. Everything lives under one temp dir and one Lab,
// so cleanup removes daemons, namespaces and files even when a test fails.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, must, type RunResult } from './netns.js';
import { packageRoot } from '../../src/cli/version.js';

const BIN = join(packageRoot(), 'bin', 'meshctl');
/** What a node namespace's own resolv.conf holds unless a test gives another. */
export const DEFAULT_NODE_RESOLV_CONF = '# meshctl test: this namespace’s own resolv.conf\noptions timeout:1\n';

export interface MeshNode {
  name: string;
  ns: string;
  lanIp: string;
  socket: string;
  stateDir: string;
  /** opts.env: more environment for this one run */
  run(args: string[], timeoutMs?: number, opts?: { uid?: number; env?: Record<string, string> }): Promise<RunResult>;
}

export class MeshLab {
  readonly lab = new Lab();
  readonly dir = mkdtempSync(join(tmpdir(), 'meshctl-test-'));
  private bridgeNs = '';
  private links = 0;
  /** the bridge's end of the control namespace's veth: shaping it shapes what reaches control and the relay */
  controlBridgeEnd: { ns: string; dev: string } | null = null;
  controlNs = '';
  readonly controlIp = '10.88.0.1';
  readonly controlPort = 8443;
  controlProc: ChildProcess | null = null;
  readonly nodes: MeshNode[] = [];

  constructor() {
    // other users must reach the daemons' sockets in here (the permission tests run as nobody)
    chmodSync(this.dir, 0o755);
  }

  get controlDir(): string {
    return join(this.dir, 'control');
  }
  get url(): string {
    return `https://${this.controlIp}:${this.controlPort}`;
  }
  get caFile(): string {
    return join(this.dir, 'ca.pem');
  }

  meshctl(args: string[], timeoutMs = 30_000): Promise<RunResult> {
    return import('./netns.js').then(({ sh }) => sh(process.execPath, [BIN, ...args], timeoutMs));
  }

  private async attach(ns: string, ip: string): Promise<string> {
    const n = this.links++;
    const a = `m${this.lab.id.slice(-5)}a${n}`.slice(0, 15);
    const b = `m${this.lab.id.slice(-5)}b${n}`.slice(0, 15);
    await must('ip', ['link', 'add', a, 'netns', ns, 'type', 'veth', 'peer', 'name', b, 'netns', this.bridgeNs]);
    await must('ip', ['-n', this.bridgeNs, 'link', 'set', b, 'master', 'br0', 'up']);
    await must('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', a]);
    await must('ip', ['-n', ns, 'link', 'set', a, 'up']);
    return b;
  }

  /**
   * `env`: extra environment for every node's CLI and so for the daemons `up` starts. Every node namespace gets its
   * own resolv.conf (`resolvConf`, default one naming no resolver): a daemon's MagicDNS rewrites that, never the host's.
   */
  async build(nodeCount: number, extraEnv: Record<string, string> = {}, resolvConf = DEFAULT_NODE_RESOLV_CONF): Promise<void> {
    this.bridgeNs = await this.lab.netns('br');
    await must('ip', ['-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await must('ip', ['-n', this.bridgeNs, 'link', 'set', 'br0', 'up']);
    this.controlNs = await this.lab.netns('ctl');
    this.controlBridgeEnd = { ns: this.bridgeNs, dev: await this.attach(this.controlNs, this.controlIp) };
    for (let i = 1; i <= nodeCount; i++) {
      const name = `node${i}`;
      const ns = await this.lab.netns(`n${i}`);
      const lanIp = `10.88.0.${10 + i}`;
      this.lab.resolvConf(ns, resolvConf);
      await this.attach(ns, lanIp);
      const socket = join(this.dir, `${name}.sock`);
      const stateDir = join(this.dir, name);
      const env = { MESHCTL_CONFIG_DIR: join(this.dir, `${name}-cli`), MESHCTL_PLAIN: '1', ...extraEnv };
      this.nodes.push({
        name,
        ns,
        lanIp,
        socket,
        stateDir,
        run: (args, timeoutMs = 30_000, opts = {}) => {
          const envArgs = Object.entries({ ...env, ...opts.env }).map(([k, v]) => `${k}=${v}`);
          const uidArgs = opts.uid === undefined ? [] : ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups'];
          return import('./netns.js').then(({ sh }) =>
            sh('ip', ['netns', 'exec', ns, 'env', ...envArgs, ...uidArgs, process.execPath, BIN, '--socket', socket, ...args], timeoutMs),
          );
        },
      });
    }
  }

  /** The port `spawnRelay` listens on, in the control namespace; STUN is on 3478. */
  readonly relayPort = 8444;

  /** `meshctl relay serve` for `region` in the control namespace (its state under the lab dir); `nodeArgs` go to node itself. */
  spawnRelay(region: string, extra: string[] = [], nodeArgs: string[] = []): ChildProcess {
    return this.lab.spawn(this.controlNs, [
      process.execPath,
      ...nodeArgs,
      BIN,
      'relay',
      'serve',
      '--listen',
      `${this.controlIp}:${this.relayPort}`,
      '--stun-port',
      '3478',
      '--region',
      region,
      '--state-dir',
      join(this.dir, 'relay'),
      ...extra,
    ]);
  }

  async startControl(extra: string[] = []): Promise<void> {
    this.controlProc = this.lab.spawn(this.controlNs, [
      process.execPath,
      BIN,
      'control',
      'serve',
      '--listen',
      `${this.controlIp}:${this.controlPort}`,
      '--state-dir',
      this.controlDir,
      ...extra,
    ]);
    const deadline = Date.now() + 10_000;
    let out = '';
    this.controlProc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    while (!/listening on/.test(out)) {
      if (Date.now() > deadline || this.controlProc.exitCode !== null) throw new Error(`control server did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const ca = await this.meshctl(['control', 'ca', '--state-dir', this.controlDir]);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(this.caFile, ca.stdout);
  }

  async killControl(): Promise<void> {
    const p = this.controlProc;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    process.kill(-p.pid!, 'SIGKILL');
    await gone;
  }

  async authKey(flags: string[] = ['--reusable']): Promise<string> {
    const r = await this.meshctl(['control', 'authkey', 'create', '--state-dir', this.controlDir, ...flags]);
    if (r.code !== 0) throw new Error(`authkey create failed: ${r.stderr}`);
    return r.stdout.trim().split('\n').pop()!;
  }

  /** The CLI in `ns` as a stranger: its own client config, so nothing remembered from other runs helps it. */
  runFresh(ns: string, who: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
    const env = [`MESHCTL_CONFIG_DIR=${join(this.dir, `${who}-cli`)}`, 'MESHCTL_PLAIN=1'];
    return import('./netns.js').then(({ sh }) =>
      sh('ip', ['netns', 'exec', ns, 'env', ...env, process.execPath, BIN, '--socket', join(this.dir, `${who}.sock`), ...args], timeoutMs),
    );
  }

  /** opts.trust 'extra-ca': no --control-ca; the control CA comes through NODE_EXTRA_CA_CERTS, as a private CA would */
  up(n: MeshNode, extra: string[] = [], opts: { trust?: 'pin' | 'extra-ca' } = {}): Promise<RunResult> {
    const viaEnv = opts.trust === 'extra-ca';
    const pin = viaEnv ? [] : ['--control-ca', this.caFile];
    return n.run(
      ['up', '--login-server', this.url, ...pin, '--hostname', n.name, '--state-dir', n.stateDir, '--timeout', '20s', ...extra],
      30_000,
      viaEnv ? { env: { NODE_EXTRA_CA_CERTS: this.caFile } } : {},
    );
  }

  async cleanup(): Promise<void> {
    await this.lab.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; returns the value or throws with the last one. */
export async function eventually<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 5000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
