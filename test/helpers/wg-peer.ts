// A WireGuard peer of either implementation, configured identically through
// the `wg` tool over the UAPI socket, so every interop test runs both ways.
import type { TunStats } from '../../src/tun/device.js';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { packageRoot } from '../../src/cli/version.js';
import { must, uniqueSuffix, type Lab } from './netns.js';

export type WgKind = 'wireguard-go' | 'meshctl';

export interface WgPeer {
  kind: WgKind;
  ns: string;
  ifname: string;
  publicKey: string;
  privateKeyFile: string;
  proc: ChildProcess;
  stderr: () => string;
  /** meshctl only: the engine's counters (SIGUSR1 → `stats {json}` on stderr) */
  stats(): Promise<{
    sessions: number;
    dropped: Record<string, number>;
    rx: { packets: number };
    /** the access filter's counters when MESHCTL_ENGINE_ACL_RULES is set */
    acl?: { droppedNoRule: number; droppedNotAReply: number; flows: number } | null;
    tun?: TunStats;
    udpReader?: { batches: number; truncated: number; handovers: number; threadStarts: number; thread: boolean } | null;
  }>;
}

let seq = 0;

export async function startPeer(
  lab: Lab,
  kind: WgKind,
  ns: string,
  opts: {
    port: number;
    inner4: string;
    inner6: string;
    env?: NodeJS.ProcessEnv;
    /** wireguard-go only: the binary to run (Debian's `wireguard-go` on PATH unless given, e.g. an upstream build) */
    binary?: string;
  },
): Promise<WgPeer> {
  // the UAPI socket directory is shared by every namespace: a random name (at most 14 characters, within IFNAMSIZ),
  // and a socket already there belongs to someone else, so it is never removed
  const ifname = `w${uniqueSuffix()}${kind === 'meshctl' ? 'm' : 'g'}${seq++}`;
  const sock = `/var/run/wireguard/${ifname}.sock`;
  if (existsSync(sock)) throw new Error(`${sock} exists: another process uses the name ${ifname}`);
  const cmd =
    kind === 'wireguard-go'
      ? [opts.binary ?? 'wireguard-go', '-f', ifname]
      : [
          process.execPath,
          ...(process.env.MESHCTL_TEST_NODE_ARGS ?? '').split(' ').filter(Boolean),
          join(packageRoot(), 'bin', 'meshctl'),
          'debug',
          'engine',
          '--ifname',
          ifname,
          '--foreground',
        ];
  // `-f` and WG_PROCESS_FOREGROUND=1: wireguard-go stays this process (every version) instead of forking a daemon
  const proc = lab.spawn(ns, cmd, { ...opts.env, LOG_LEVEL: 'error', ...(kind === 'wireguard-go' ? { WG_PROCESS_FOREGROUND: '1' } : {}) });
  // both implementations remove their socket on SIGTERM; a SIGKILLed one leaves it: this test's own, so removed
  lab.onCleanup(() => rmSync(sock, { force: true }));
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdout!.resume();
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(sock)) throw new Error(`${kind} did not create ${sock}: ${err}`);
  const dir = mkdtempSync(join(tmpdir(), 'mckey-'));
  lab.onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const privateKey = (await must('wg', ['genkey'])).trim();
  const privateKeyFile = join(dir, 'key');
  writeFileSync(privateKeyFile, privateKey + '\n', { mode: 0o600 });
  const publicKey = (await must('sh', ['-c', `echo ${privateKey} | wg pubkey`])).trim();
  await lab.exec(ns, ['wg', 'set', ifname, 'private-key', privateKeyFile, 'listen-port', String(opts.port)]).then((r) => {
    if (r.code !== 0) throw new Error(`wg set failed: ${r.stderr}`);
  });
  await must('ip', ['-n', ns, 'addr', 'add', opts.inner4, 'dev', ifname]);
  await must('ip', ['-n', ns, 'addr', 'add', opts.inner6, 'dev', ifname, 'nodad']);
  await must('ip', ['-n', ns, 'link', 'set', ifname, 'mtu', '1420', 'up']);
  return {
    kind,
    ns,
    ifname,
    publicKey,
    privateKeyFile,
    proc,
    stderr: () => err,
    stats: async () => {
      const before = err.length;
      proc.kill('SIGUSR1');
      for (let i = 0; i < 100; i++) {
        const m = /stats (\{.*\})\n/.exec(err.slice(before));
        if (m) return JSON.parse(m[1]!);
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('no stats line from the engine');
    },
  };
}

export async function addPeer(lab: Lab, self: WgPeer, other: WgPeer, allowed: string, endpoint?: string): Promise<void> {
  const args = ['wg', 'set', self.ifname, 'peer', other.publicKey, 'allowed-ips', allowed];
  if (endpoint) args.push('endpoint', endpoint);
  const r = await lab.exec(self.ns, args);
  if (r.code !== 0) throw new Error(`wg set peer failed: ${r.stderr}`);
}
