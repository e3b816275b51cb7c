// `meshctl service install|uninstall [node|control|relay]`: a systemd unit for
// a role (service-unit.ts), its secrets in a 0600 EnvironmentFile, and
// systemctl enable/disable. The role's flags (after `--`) are checked by the
// role's own parser before anything is written, so a typo fails now, not at
// the next boot. --unit-dir writes elsewhere (packaging, tests) and runs no
// systemctl; --dry-run prints every step and changes nothing.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { type Command, CommanderError, Option } from 'commander';
import { existsSync, readFileSync, rmSync } from '../util/cjs.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { RELAY_MESH_KEY_ENV } from '../util/knobs.js';
import { CliError } from './errors.js';
import { packageRoot } from './version.js';
import { quoteEnvValue, renderUnit, type Role, ROLES, stateDirOf, UnitArgError, unitName } from './service-unit.js';

export const DEFAULT_UNIT_DIR = '/etc/systemd/system';
export const DEFAULT_ENV_DIR = '/etc/meshctl';
/** Role flags taken: a unit's command line is a few dozen words; more is a mistake. */
const MAX_ROLE_FLAGS = 128;

/** The meshctl command each role runs. */
const COMMAND: Record<Role, string[]> = { node: ['daemon'], control: ['control', 'serve'], relay: ['relay', 'serve'] };
/** Flags that carry secrets or belong to `up`: refused in a unit, with where the secret goes instead. */
const REFUSED: Record<string, string> = {
  '--auth-key': 'join after installing: sudo meshctl up --join-file FILE (the node daemon remembers it)',
  '--join': 'join after installing: sudo meshctl up --join-file FILE (the node daemon remembers it)',
  '--join-file': 'join after installing: sudo meshctl up --join-file FILE (the node daemon remembers it)',
};

interface ServiceOpts {
  unitDir?: string;
  envDir?: string;
  dryRun?: boolean;
  now?: boolean;
}

function roleArg(v: string | undefined): Role {
  const r = v ?? 'node';
  if (!(ROLES as readonly string[]).includes(r)) throw new CliError('USAGE', `"${r}" is not a role: use node, control or relay`);
  return r as Role;
}

/** The value of `--flag V` or `--flag=V` in flags (the last one given), or undefined. */
function flagValue(flags: string[], flag: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < flags.length; i++) {
    if (flags[i] === flag) v = flags[i + 1];
    else if (flags[i]!.startsWith(`${flag}=`)) v = flags[i]!.slice(flag.length + 1);
  }
  return v;
}

/** Parses the role's flags with the role's own command, so a unit never holds flags the role would refuse. */
async function checkRoleFlags(role: Role, flags: string[]): Promise<void> {
  for (const f of flags) {
    const name = f.split('=')[0]!;
    if (REFUSED[name]) throw new CliError('USAGE', `${name} cannot go in a unit: ${REFUSED[name]}`);
  }
  const { buildProgram } = await import('./main.js');
  const program = buildProgram();
  let cmd: Command = program;
  for (const word of COMMAND[role]) cmd = cmd.commands.find((c) => c.name() === word)!;
  let err = '';
  const quiet = (c: Command): void => {
    c.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: () => {} });
    for (const sub of c.commands) quiet(sub);
  };
  quiet(program);
  cmd.action(() => {});
  try {
    await program.parseAsync([...COMMAND[role], ...flags], { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    throw new CliError('USAGE', `${role} flags: ${(err.split('\n')[0] ?? e.message).replace(/^error: /, '')}`);
  }
}

/** Ports below 1024 the role would listen on, from its flags and their defaults. */
function privilegedPorts(role: Role, flags: string[]): number[] {
  const port = (listen: string | undefined, dflt: number): number => Number(/:(\d{1,5})$/.exec(listen ?? '')?.[1] ?? dflt);
  const ports =
    role === 'control'
      ? [port(flagValue(flags, '--listen'), 8443)]
      : role === 'relay'
        ? [port(flagValue(flags, '--listen'), 443), Number(flagValue(flags, '--stun-port') ?? 3478)]
        : [];
  return ports.filter((p) => p > 0 && p < 1024);
}

interface Plan {
  unitPath: string;
  unit: string;
  envPath: string;
  env: string | null;
  systemctl: string[][];
  notes: string[];
}

async function planInstall(role: Role, flags: string[], o: ServiceOpts, env: NodeJS.ProcessEnv): Promise<Plan> {
  if (flags.length > MAX_ROLE_FLAGS) throw new CliError('USAGE', `more than ${MAX_ROLE_FLAGS} role flags`);
  await checkRoleFlags(role, flags);
  const given = flagValue(flags, '--state-dir');
  const stateFlags = given === undefined ? ['--state-dir', stateDirOf(role)] : [];
  const envPath = join(o.envDir ?? DEFAULT_ENV_DIR, `${role}.env`);
  let envText: string | null = null;
  if (role === 'relay' && env[RELAY_MESH_KEY_ENV]) {
    try {
      envText = `# secrets of ${unitName(role)}; root only (mode 0600)\n${RELAY_MESH_KEY_ENV}=${quoteEnvValue(env[RELAY_MESH_KEY_ENV]!)}\n`;
    } catch (err) {
      throw new CliError('USAGE', `${RELAY_MESH_KEY_ENV} ${(err as Error).message}`);
    }
  }
  const argv = [process.execPath, join(packageRoot(), 'bin', 'meshctl'), ...COMMAND[role], ...stateFlags, ...flags];
  let unit: string;
  try {
    unit = renderUnit({
      role,
      argv,
      privilegedPorts: privilegedPorts(role, flags),
      envFile: envText === null ? undefined : resolve(envPath),
      extraStateDir: given !== undefined && resolve(given) !== stateDirOf(role) ? resolve(given) : undefined,
    });
  } catch (err) {
    if (err instanceof UnitArgError) throw new CliError('USAGE', `a ${role} flag ${err.message}`);
    throw err;
  }
  const name = unitName(role);
  const live = o.unitDir === undefined;
  const systemctl = live ? [['daemon-reload'], ['enable', ...(o.now ? ['--now'] : []), name]] : [];
  const notes = live ? [] : [`--unit-dir: no systemctl run; enable it where it is installed: systemctl enable --now ${name}`];
  const hidden = argv.slice(0, 2).find((f) => /^\/(home|root|run\/user)\//.test(f));
  if (hidden) notes.push(`warning: ${hidden} is under a directory ProtectHome=yes hides from the service: install node and meshctl under /usr or /opt`);
  if (role === 'node') notes.push(`then join: sudo meshctl up --join-file FILE (the daemon's state is in ${given ?? stateDirOf(role)})`);
  return { unitPath: join(o.unitDir ?? DEFAULT_UNIT_DIR, name), unit, envPath, env: envText, systemctl, notes };
}

/** systemctl can act only where systemd is the init system (`/run/systemd/system` exists): not in most containers. */
function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

function runSystemctl(steps: string[][]): void {
  if (steps.length && !systemdRunning()) {
    process.stderr.write(`systemd is not running here (no /run/systemd/system): skipped systemctl ${steps.map((s) => s.join(' ')).join('; systemctl ')}\n`);
    return;
  }
  for (const args of steps) {
    const r = spawnSync('systemctl', args, { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0) {
      const why = r.error ? (r.error as NodeJS.ErrnoException).code : (r.stderr ?? '').trim().split('\n')[0];
      throw new CliError('FAILURE', `systemctl ${args.join(' ')} failed: ${why}`);
    }
  }
}

async function install(roleText: string | undefined, flags: string[], o: ServiceOpts, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const role = roleArg(roleText);
  const p = await planInstall(role, flags, o, env);
  if (o.dryRun) {
    let out = `would write ${p.unitPath} (mode 0644):\n${p.unit}`;
    if (p.env !== null) out += `would write ${p.envPath} (mode 0600): ${RELAY_MESH_KEY_ENV}=<secret, not shown>\n`;
    for (const s of p.systemctl) out += `would run: systemctl ${s.join(' ')}\n`;
    process.stdout.write(out);
    for (const n of p.notes) process.stderr.write(`${n}\n`);
    return;
  }
  try {
    if (p.env !== null) writeFileAtomic(p.envPath, p.env, 0o600);
    writeFileAtomic(p.unitPath, p.unit, 0o644);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError('FAILURE', `cannot write ${e.path ?? p.unitPath}: ${e.code ?? e.message}${e.code === 'EACCES' ? ' (run it as root)' : ''}`);
  }
  process.stderr.write(`wrote ${p.unitPath}${p.env !== null ? ` and ${p.envPath} (mode 0600)` : ''}\n`);
  runSystemctl(p.systemctl);
  for (const n of p.notes) process.stderr.write(`${n}\n`);
}

async function uninstall(roleText: string | undefined, o: ServiceOpts): Promise<void> {
  const role = roleArg(roleText);
  const name = unitName(role);
  const unitPath = join(o.unitDir ?? DEFAULT_UNIT_DIR, name);
  const envPath = join(o.envDir ?? DEFAULT_ENV_DIR, `${role}.env`);
  const steps = o.unitDir === undefined ? [['disable', '--now', name]] : [];
  const after = o.unitDir === undefined ? [['daemon-reload']] : [];
  const ours = existsSync(unitPath) && readFileSync(unitPath, 'utf8').startsWith(`# ${name}: written by \`meshctl service install`);
  if (existsSync(unitPath) && !ours) throw new CliError('FAILURE', `${unitPath} was not written by meshctl service install: remove it yourself`);
  const files = [unitPath, envPath].filter((f) => existsSync(f));
  if (o.dryRun) {
    let out = '';
    for (const s of steps) out += `would run: systemctl ${s.join(' ')}\n`;
    for (const f of files) out += `would remove ${f}\n`;
    for (const s of after) out += `would run: systemctl ${s.join(' ')}\n`;
    process.stdout.write(out || `nothing to do: no ${unitPath}\n`);
    return;
  }
  if (!files.length) return void process.stderr.write(`nothing to do: no ${unitPath}\n`);
  if (ours) runSystemctl(steps);
  for (const f of files) rmSync(f, { force: true });
  runSystemctl(after);
  process.stderr.write(`removed ${files.join(' and ')}; the state in ${stateDirOf(role)} is kept\n`);
}

export function registerService(program: Command): void {
  const service = program.command('service').description('systemd units for the node daemon, the control server or the relay');
  const common = (c: Command): Command =>
    c
      .addOption(new Option('--unit-dir <dir>', `write the unit here instead of ${DEFAULT_UNIT_DIR}, and run no systemctl (packaging, tests)`))
      .addOption(new Option('--env-dir <dir>', `where the unit's secrets file goes (default ${DEFAULT_ENV_DIR})`))
      .option('--dry-run', 'print what would be written and run; change nothing');
  common(
    service
      .command('install [role] [flags...]')
      .description(
        "write meshctl-ROLE.service (node, the default; control; relay) and enable it; the role's flags go after `--`, e.g. " +
          '`meshctl service install relay --now -- --region fra --listen 0.0.0.0:443`',
      )
      .option('--now', 'also start it'),
  ).action(async (role: string | undefined, flags: string[], o: ServiceOpts) => install(role, flags, o));
  common(
    service.command('uninstall [role]').description('stop and disable meshctl-ROLE.service and remove its unit and secrets file (the state stays)'),
  ).action(async (role: string | undefined, o: ServiceOpts) => uninstall(role, o));
}

/** For tests: the unit and secrets file install would write, without writing them. */
export const planServiceInstall = (role: Role, flags: string[], o: ServiceOpts, env: NodeJS.ProcessEnv): Promise<Plan> => planInstall(role, flags, o, env);
