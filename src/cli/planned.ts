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
  { path: ['up'], description: 'start the daemon if needed, join the network and bring the interface up', issue: 3 },
  { path: ['down'], description: 'stop carrying traffic, keep identity and settings', issue: 3 },
  { path: ['logout'], description: 'forget the node key here and at the control server', issue: 3 },
  { path: ['status'], description: 'show this node and its peers, and the path that carries traffic to each', issue: 3 },
  { path: ['ping'], description: 'probe a peer and show the path that answered', issue: 3, args: '<peer>' },
  { path: ['ip'], description: "print this node's (or a peer's) mesh addresses", issue: 3, args: '[peer]' },
  { path: ['whois'], description: 'show which node owns a mesh address', issue: 3, args: '<ip>' },
  { path: ['set'], description: 'change one setting of a running node', issue: 3 },
  { path: ['netcheck'], description: 'report UDP reachability, NAT type, port mapping and relay latency', issue: 4 },
  { path: ['control', 'serve'], description: 'run the HTTPS control server', issue: 3 },
  { path: ['control', 'ca'], description: "print the control server's certificate (PEM)", issue: 3 },
  { path: ['control', 'authkey', 'create'], description: 'create an auth key', issue: 3 },
  { path: ['control', 'nodes'], description: 'list, delete or expire nodes', issue: 3, args: '<list|delete|expire> [node]' },
  { path: ['relay', 'serve'], description: 'run a relay and STUN server', issue: 4 },
  { path: ['lab'], description: 'build a demo network of namespaces behind NATs (root)', issue: 4, args: '<up|status|down>' },
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
