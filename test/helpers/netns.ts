// Network namespaces for tests: unique names, veth links, commands and
// long-running processes inside them, and one cleanup that removes all of it
// (processes first) even when a test fails or the runner is interrupted.
import { execFile, execSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** `ip netns exec NS` bind-mounts every file of /etc/netns/NS over /etc (resolv.conf among them). */
export const NETNS_ETC = '/etc/netns';

const live = new Set<Lab>();

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export async function must(cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  const r = await sh(cmd, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** 32 random bits as 8 hex digits: names that runs side by side (or a leftover of a killed run) never share. */
export function uniqueSuffix(): string {
  return randomBytes(4).toString('hex');
}

export class Lab {
  /** `mc` + 8 hex digits; veth names add 3 or 4 characters, within IFNAMSIZ (15) */
  readonly id = `mc${uniqueSuffix()}`;
  private readonly namespaces: string[] = [];
  /** /etc/netns/NS dirs this lab made: shared with the host's /etc, so removed in every cleanup */
  private readonly etcDirs: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private readonly afterCleanup: (() => void)[] = [];

  constructor() {
    live.add(this);
  }

  async netns(suffix: string): Promise<string> {
    const name = `${this.id}${suffix}`;
    await must('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /**
   * Gives `ns` its own /etc/resolv.conf (what `ip netns exec` mounts over the host's), so a daemon there
   * configures that file and never the host's. The dir is removed in cleanup, and at exit if the runner dies.
   */
  resolvConf(ns: string, text: string): string {
    const dir = join(NETNS_ETC, ns);
    if (!this.etcDirs.includes(dir)) this.etcDirs.push(dir);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const file = join(dir, 'resolv.conf');
    writeFileSync(file, text, { mode: 0o644 });
    return file;
  }

  /** A veth between two namespaces with the given CIDR addresses. */
  /** Returns the two ends' names (in a, in b). */
  async link(a: string, aCidr: string, b: string, bCidr: string): Promise<[string, string]> {
    const ia = `v${this.id.slice(2)}a${this.namespaces.length}`;
    const ib = `v${this.id.slice(2)}b${this.namespaces.length}`;
    await must('ip', ['link', 'add', ia, 'netns', a, 'type', 'veth', 'peer', 'name', ib, 'netns', b]);
    await must('ip', ['-n', a, 'addr', 'add', aCidr, 'dev', ia]);
    await must('ip', ['-n', b, 'addr', 'add', bCidr, 'dev', ib]);
    await must('ip', ['-n', a, 'link', 'set', ia, 'up']);
    await must('ip', ['-n', b, 'link', 'set', ib, 'up']);
    return [ia, ib];
  }

  exec(ns: string, cmd: string[], timeoutMs?: number): Promise<RunResult> {
    return sh('ip', ['netns', 'exec', ns, ...cmd], timeoutMs);
  }

  /** A long-running process in `ns`, in its own process group. */
  spawn(ns: string, cmd: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, ...cmd], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.procs.push(p);
    return p;
  }

  /** Runs `fn` at the end of cleanup, after every process is gone: for files outside the namespaces this test made. */
  onCleanup(fn: () => void): void {
    this.afterCleanup.push(fn);
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode === null && p.pid) {
        try {
          process.kill(-p.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
    }
    await Promise.all(
      this.procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (p.exitCode !== null || p.signalCode !== null) return r();
            const t = setTimeout(() => {
              try {
                if (p.pid) process.kill(-p.pid, 'SIGKILL');
              } catch {
                /* gone */
              }
              r();
            }, 3000);
            p.once('exit', () => (clearTimeout(t), r()));
          }),
      ),
    );
    // daemons a test started with `meshctl up` detach from it: find them by namespace
    for (const ns of this.namespaces) {
      const pids = (await sh('ip', ['netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const ns of this.namespaces) await sh('ip', ['netns', 'del', ns]);
    this.namespaces.length = 0;
    for (const dir of this.etcDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    for (const fn of this.afterCleanup.splice(0)) fn();
    live.delete(this);
  }
}

// Last resort when the runner is killed: remove namespaces synchronously.
process.once('exit', () => {
  for (const lab of live) for (const dir of (lab as unknown as { etcDirs: string[] }).etcDirs) rmSync(dir, { recursive: true, force: true });
  for (const lab of live)
    for (const ns of (lab as unknown as { namespaces: string[] }).namespaces) {
      try {
        execSync(`ip netns pids ${ns} | xargs -r kill -9; ip netns del ${ns}`);
      } catch {
        /* best effort */
      }
    }
});
