// `meshctl lab up|status|down`: the one-command demonstration, on one machine.
import { type Command, Option } from 'commander';
import { join } from 'node:path';
import { CliError } from './errors.js';
import { packageRoot } from './version.js';
import { noInstallFromEnv } from '../util/knobs.js';
import { NAT_KINDS } from '../lab/topology.js';

const DEFAULT_NODES = 'public,easy,easy,hard,blocked';
const PATH_WAIT_MS = 20_000;

function kindsArg(v: string): string[] {
  const kinds = v.split(',').map((k) => k.trim());
  const ok: readonly string[] = NAT_KINDS;
  for (const k of kinds) if (!ok.includes(k)) throw new CliError('USAGE', `--nodes: "${k}" is not one of ${ok.join(', ')}`);
  if (kinds.length < 2 || kinds.length > 9) throw new CliError('USAGE', '--nodes: between 2 and 9 nodes');
  return kinds;
}

/** Checks the lab's Debian packages before anything is built; installs them only as `mode` allows (src/lab/deps.ts). */
async function labPackages(kinds: string[], mode: 'install' | 'ask' | 'refuse' | 'print', say: (m: string) => void): Promise<void> {
  const { ensureLabPackages } = await import('../lab/deps.js');
  const ask = async (question: string): Promise<boolean> => {
    const { createInterface } = await import('node:readline/promises');
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      // stdin closed before an answer: no answer is no
      const closed = new Promise<string>((resolve) => rl.once('close', () => resolve('')));
      return /^y(es)?$/i.test((await Promise.race([rl.question(question), closed])).trim());
    } catch {
      return false;
    } finally {
      rl.close();
    }
  };
  try {
    await ensureLabPackages({ kinds, mode, ask, say });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'MISSING_PACKAGES' || e.code === 'TOOL_MISSING' || e.code === 'BAD_DEPS_FILE') throw new CliError('FAILURE', `meshctl lab up: ${e.message}`);
    throw err;
  }
}

export function registerLab(program: Command): void {
  const lab = program.command('lab').description('a demonstration network of namespaces behind NATs, on this machine (root)');
  const nameOpt = () => new Option('--name <name>', 'lab name (namespaces are prefixed with it)').default('mlab');
  lab
    .command('up')
    .description("build the lab, start control, relays and nodes, and print every node's status")
    .addOption(nameOpt())
    .addOption(
      new Option('--nodes <kinds>', `comma-separated NAT kinds: ${NAT_KINDS.join(', ')} (the -bare kinds: no WAN input firewall)`)
        .argParser(kindsArg)
        .default(kindsArg(DEFAULT_NODES), DEFAULT_NODES),
    )
    .option('--uplink <rate>', 'shape every NAT uplink with TBF, e.g. 20mbit')
    .addOption(
      new Option('--router-firewall <mode>', 'what every NAT router does with unsolicited WAN input: drop (a home router) or none (a bare Linux NAT)')
        .choices(['drop', 'none'])
        .default('drop'),
    )
    .option('--ipv6', 'dual-stack: IPv6 (2001:db8::/32, inside the lab only) on the internet, and a routed /64 per NAT site behind a stateful firewall')
    .option('--transit', 'put an "ISP" router between each NAT router and the internet, so TTLs count one more hop per side')
    .option('--install-deps', 'install the Debian packages the lab needs that are missing (apt-get), without asking')
    .option('--no-install', 'never install packages: print the apt-get command and fail (also MESHCTL_NO_INSTALL=1)')
    .action(
      async (o: {
        name: string;
        nodes: string[];
        uplink?: string;
        routerFirewall: 'drop' | 'none';
        transit?: boolean;
        installDeps?: boolean;
        install: boolean;
      }) => {
        const say = (m: string): void => void process.stderr.write(`${m}\n`);
        await labPackages(o.nodes, !o.install || noInstallFromEnv() ? 'refuse' : o.installDeps ? 'install' : process.stdin.isTTY ? 'ask' : 'print', say);
        const { Lab, LabError } = await import('../lab/lab.js');
        const { printLabStatus } = await import('../lab/report.js');
        const opts = {
          name: o.name,
          kinds: o.nodes as never,
          uplink: o.uplink,
          routerFirewall: o.routerFirewall,
          transit: o.transit === true,
          bin: join(packageRoot(), 'bin', 'meshctl'),
          progress: say,
        };
        let l;
        try {
          l = await Lab.create(opts);
        } catch (err) {
          throw new CliError(err instanceof LabError ? 'FAILURE' : 'FAILURE', (err as Error).message);
        }
        try {
          await l.build(opts);
          say('starting the control server and relays');
          await l.startServers();
          say(`starting ${l.s.nodes.length} nodes (meshctl up in each)`);
          await l.upAll();
          say('waiting for paths');
          await l
            .waitFor('paths', async () => (await import('../lab/report.js')).allPathsKnown(l!), PATH_WAIT_MS)
            .catch(() => say('some peers have no path yet; status shows them as they are'));
          process.stdout.write(await printLabStatus(l));
          say(`the lab stays up: meshctl lab status / meshctl lab down --name ${o.name}`);
        } catch (err) {
          say(`lab up failed: ${(err as Error).message}; tearing it down`);
          await l.down();
          throw new CliError('FAILURE', `meshctl lab up: ${(err as Error).message}`);
        }
      },
    );
  lab
    .command('status')
    .description("print every lab node's status")
    .addOption(nameOpt())
    .action(async (o: { name: string }) => {
      const { Lab, loadLab } = await import('../lab/lab.js');
      const { printLabStatus } = await import('../lab/report.js');
      const s = loadLab(o.name);
      if (!s) throw new CliError('FAILURE', `no lab named ${o.name} is up: run \`sudo meshctl lab up\``);
      process.stdout.write(await printLabStatus(new Lab(s)));
    });
  lab
    .command('down')
    .description('stop everything the lab started and remove its namespaces')
    .addOption(nameOpt())
    .action(async (o: { name: string }) => {
      const { loadLab, tearDown } = await import('../lab/lab.js');
      const s = loadLab(o.name);
      if (!s) throw new CliError('FAILURE', `no lab named ${o.name} is up`);
      await tearDown(s);
      process.stderr.write(`lab ${o.name} removed\n`);
    });
}
