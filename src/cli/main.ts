// Entry point of the meshctl binary: builds the command tree (one file per
// command) and maps errors to one-line messages and stable exit statuses.
import { Command, CommanderError } from 'commander';
import { CliError, EXIT } from './errors.js';
import { meshctlVersion } from './version.js';
import { socketFromEnv } from '../util/knobs.js';
import { registerDebug } from './debug.js';
import { registerUp } from './up.js';
import { registerDown } from './down.js';
import { registerStatus } from './status.js';
import { registerPing } from './ping.js';
import { registerIp } from './ip.js';
import { registerSet } from './set.js';
import { registerDaemon } from './daemon.js';
import { registerControl } from './control.js';
import { registerRelay } from './relay.js';
import { registerNetcheck } from './netcheck.js';
import { registerLab } from './lab.js';
import { registerDns } from './dns.js';
import { registerCompletion } from './completion.js';
import { registerLabExec } from './lab-exec.js';
import { registerBugreport } from './bugreport.js';
import { registerService } from './service.js';
import { registerMetrics } from './metrics.js';

export function buildProgram(): Command {
  const program = new Command('meshctl')
    .description('A self-hostable full-mesh WireGuard VPN: node daemon, control server and relay in one binary')
    .version(meshctlVersion(), '--version', 'print the version and exit')
    .option('--socket <path>', "the daemon's local API socket (env MESHCTL_SOCKET)", socketFromEnv())
    .configureOutput({ outputError: (str, write) => write(str.split('\n')[0] + '\n') });

  program
    .command('version')
    .description('print the version')
    .option('--json', 'print as JSON')
    .action((opts: { json?: boolean }) => {
      const v = meshctlVersion();
      process.stdout.write(opts.json ? JSON.stringify({ version: v, node: process.version }) + '\n' : `${v}\n`);
    });

  registerUp(program);
  registerDown(program);
  registerStatus(program);
  registerPing(program);
  registerIp(program);
  registerSet(program);
  registerDaemon(program);
  registerControl(program);
  registerRelay(program);
  registerNetcheck(program);
  registerDns(program);
  registerMetrics(program);
  registerLab(program);
  registerLabExec(program);
  registerService(program);
  registerDebug(program);
  registerBugreport(program);
  registerCompletion(program, meshctlVersion);
  return program;
}

function exitOverrideAll(cmd: Command): void {
  cmd.exitOverride();
  for (const c of cmd.commands) exitOverrideAll(c);
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  exitOverrideAll(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // help and version are successful exits; anything else commander raises is bad usage
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.OK;
    if (err.code === 'commander.executeSubCommandAsync') return EXIT.FAILURE;
    return EXIT.USAGE;
  }
  if (err instanceof CliError) {
    process.stderr.write(`${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`meshctl: ${(err as Error)?.message ?? String(err)}\n`);
  return EXIT.FAILURE;
}
