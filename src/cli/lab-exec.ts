// `meshctl lab exec NODE -- CMD…` and `meshctl lab shell NODE`: run a program
// (or a shell) inside a lab node's namespace, with that node's daemon socket
// in MESHCTL_SOCKET; the program's exit status becomes meshctl's.
import { type Command, Option } from 'commander';
import { constants } from 'node:os';
import { CliError } from './errors.js';

/** The shell convention for a program killed by a signal: 128 + its number. */
const SIGNAL_EXIT_BASE = 128;

async function runInNode(labName: string, nodeName: string, cmd: string[]): Promise<number> {
  const { LAB_NAME_RE, LabNodeError, findLabNode, labExecArgv } = await import('../lab/exec.js');
  const { loadLab } = await import('../lab/lab.js');
  if (!LAB_NAME_RE.test(labName)) throw new CliError('USAGE', `--name: "${labName.slice(0, 64)}" is not a lab name (letters, digits, - and _)`);
  if (process.getuid?.() !== 0) throw new CliError('PERMISSION', 'meshctl lab exec needs root (it enters a network namespace): run it with sudo');
  const s = loadLab(labName);
  if (!s) throw new CliError('NOT_FOUND', `no lab named ${labName} is up: run \`sudo meshctl lab up --name ${labName}\``);
  let run;
  try {
    run = labExecArgv(s, findLabNode(s, nodeName), cmd);
  } catch (err) {
    if (err instanceof LabNodeError) throw new CliError('NOT_FOUND', err.message);
    throw err;
  }
  const { requireTool } = await import('../util/tools.js');
  requireTool(run.file);
  const { spawn } = await import('node:child_process');
  const child = spawn(run.file, run.args, { stdio: 'inherit', env: run.env });
  // the terminal's Ctrl-C and Ctrl-\ reach the child (same process group): meshctl waits for its status instead of dying first
  const ignore = (): void => {};
  const forward = (sig: NodeJS.Signals) => (): void => void child.kill(sig);
  const onTerm = forward('SIGTERM');
  const onHup = forward('SIGHUP');
  process.on('SIGINT', ignore).on('SIGQUIT', ignore).on('SIGTERM', onTerm).on('SIGHUP', onHup);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new CliError('FAILURE', `cannot run ip netns exec: ${err.message}`)));
      child.once('exit', (code, signal) => resolve(code ?? SIGNAL_EXIT_BASE + (signal ? (constants.signals[signal] ?? 0) : 0)));
    });
  } finally {
    process.off('SIGINT', ignore).off('SIGQUIT', ignore).off('SIGTERM', onTerm).off('SIGHUP', onHup);
  }
}

/** Adds `exec` and `shell` to the `lab` command registered by src/cli/lab.ts. */
export function registerLabExec(program: Command): void {
  const lab = program.commands.find((c) => c.name() === 'lab');
  if (!lab) throw new Error('registerLabExec: register the lab command first');
  const nameOpt = () => new Option('--name <name>', 'lab name').default('mlab');
  lab
    .command('exec')
    .description("run a command in a lab node's namespace, with MESHCTL_SOCKET set to that node's daemon; exits with its status")
    .addOption(nameOpt())
    .argument('<node>', 'the node, as `lab status` names it (e.g. node1-public)')
    .argument('<cmd...>', 'the command and its arguments, after --')
    .action(async (node: string, cmd: string[], o: { name: string }) => {
      process.exitCode = await runInNode(o.name, node, cmd);
    });
  lab
    .command('shell')
    .description("start an interactive shell ($SHELL, else /bin/bash) in a lab node's namespace, with MESHCTL_SOCKET set to its daemon")
    .addOption(nameOpt())
    .argument('<node>', 'the node, as `lab status` names it')
    .action(async (node: string, o: { name: string }) => {
      const { labShellCommand } = await import('../lab/exec.js');
      process.exitCode = await runInNode(o.name, node, labShellCommand());
    });
}
