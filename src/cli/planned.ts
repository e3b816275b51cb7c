// Commands of the contract (shared/cli-contract.md) that are not built yet.
// They are listed in --help with their flags, and say so plainly (exit 2)
// instead of pretending; each moves to its own file when it is built.
import { Command } from 'commander';
import { notImplemented } from './errors.js';

interface Planned {
  path: string[];
  description: string;
  issue: number;
  args?: string;
}

const PLANNED: Planned[] = [
];

function groupOf(parent: Command, name: string): Command {
  return parent.commands.find((c) => c.name() === name) ?? parent.command(name).description(`${name} commands`);
}

export function registerPlanned(program: Command): void {
  for (const p of PLANNED) {
    let parent = program;
    for (const part of p.path.slice(0, -1)) parent = groupOf(parent, part);
    const leaf = p.path[p.path.length - 1]!;
    const cmd = parent
      .command(p.args ? `${leaf} ${p.args}` : leaf)
      .description(`${p.description} (not implemented yet)`)
      .allowUnknownOption(true)
      .allowExcessArguments(true)
      .action(() => notImplemented(p.path.join(' '), p.issue));
    cmd.helpOption('-h, --help', 'display help for command');
  }
}
