// What the lab needs from the host before it builds anything: the Debian
// packages of deps/debian.json marked for the lab (iproute2, nftables, and
// miniupnpd-nftables when a node is of the upnp kind). Host packages never
// change silently: they are installed only when the user said so (the
// --install-deps flag, or "y" at the terminal prompt), and --no-install or
// MESHCTL_NO_INSTALL refuses even that. apt-get runs from an argv array, no
// shell, with names that parsed as Debian package names.
import { spawn } from 'node:child_process';
import { aptInstallArgv, aptInstallCommand, debianDeps, packageInstalled, packagesFor, requireTool, type DebianDeps } from '../util/tools.js';

/** apt-get's own limit is generous; an install that has not ended in this long is stuck (a lock, a dead mirror). */
export const APT_TIMEOUT_MS = 15 * 60_000;
/** apt-get's stderr kept to tell a missing package index from other failures: its errors are a few lines. */
const APT_STDERR_MAX_CHARS = 16 * 1024;

/**
 * How `lab up` may get missing packages: install them (--install-deps), ask on
 * the terminal, say what to run because there is no terminal to ask on
 * ("print"), or say what to run because installing is turned off ("refuse").
 */
export type InstallMode = 'install' | 'ask' | 'print' | 'refuse';

export class LabDepsError extends Error {
  override readonly name = 'LabDepsError';
  readonly code = 'MISSING_PACKAGES';
  constructor(
    message: string,
    readonly missing: string[],
  ) {
    super(message);
  }
}

/** The lab's packages that are not installed here, by name. */
export function missingLabPackages(kinds: readonly string[], deps: DebianDeps = debianDeps(), pathEnv = process.env.PATH ?? ''): string[] {
  return packagesFor('lab', kinds, deps)
    .filter((p) => !packageInstalled(p, pathEnv))
    .map((p) => p.name);
}

/** apt-get failed because its package index is missing or stale (a fresh machine, a container): `apt-get update` fixes that. */
export function needsAptUpdate(stderr: string): boolean {
  return /Unable to locate package|has no installation candidate|is not available, but is referred to/.test(stderr);
}

export interface AptResult {
  code: number;
  stderr: string;
}

/** Runs apt-get with `args`: its progress goes to our stderr (the user sees what changes); stdout stays the lab's report. */
export function runApt(args: string[], timeoutMs = APT_TIMEOUT_MS): Promise<AptResult> {
  const bin = requireTool('apt-get');
  return new Promise((resolve) => {
    const p = spawn(bin, args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 2, 'pipe'],
    });
    let stderr = '';
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stderr?.on('data', (d: Buffer) => {
      process.stderr.write(d);
      if (stderr.length < APT_STDERR_MAX_CHARS) stderr += d.toString('utf8');
    });
    p.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: -1, stderr: e.message });
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stderr });
    });
  });
}

export interface EnsureOptions {
  kinds: readonly string[];
  mode: InstallMode;
  /** asks the user (mode "ask"): true to install */
  ask: (question: string) => Promise<boolean>;
  say: (msg: string) => void;
  /** apt-get, injectable for tests */
  apt?: (args: string[]) => Promise<AptResult>;
  deps?: DebianDeps;
}

/**
 * Makes sure the lab's packages are installed, as `mode` allows. Resolves when
 * nothing is missing (or once the install put it there); otherwise rejects with
 * a LabDepsError whose one line names the packages and the command to run.
 */
export async function ensureLabPackages(o: EnsureOptions): Promise<void> {
  const deps = o.deps ?? debianDeps();
  const missing = missingLabPackages(o.kinds, deps);
  if (missing.length === 0) return;
  const command = aptInstallCommand(missing);
  const refuse = (why: string): LabDepsError =>
    new LabDepsError(`the lab needs the Debian package${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, ${why}: run \`${command}\``, missing);
  if (o.mode === 'refuse') throw refuse('and installing is turned off (--no-install or MESHCTL_NO_INSTALL)');
  if (o.mode === 'print') throw refuse('and there is no terminal to ask on (--install-deps installs them without asking)');
  if (process.getuid?.() !== 0) throw refuse('and installing them needs root');
  if (o.mode === 'ask' && !(await o.ask(`install ${missing.join(', ')} with apt-get? [y/N] `))) throw refuse('and the answer was not yes');
  const apt = o.apt ?? runApt;
  const argv = aptInstallArgv(missing);
  o.say(`installing ${missing.join(', ')} for the lab: ${argv.join(' ')}`);
  let r = await apt(argv.slice(1));
  if (r.code !== 0 && needsAptUpdate(r.stderr)) {
    o.say('apt-get has no index for them: apt-get update, then again');
    const u = await apt(['update']);
    if (u.code !== 0) throw refuse(`and apt-get update failed (exit ${u.code})`);
    r = await apt(argv.slice(1));
  }
  if (r.code !== 0) throw refuse(`and apt-get install failed (exit ${r.code})`);
  const still = missingLabPackages(o.kinds, deps);
  if (still.length > 0)
    throw new LabDepsError(
      `apt-get installed ${missing.join(', ')}, yet the programs of ${still.join(', ')} are still not on PATH (${process.env.PATH ?? ''})`,
      still,
    );
}
