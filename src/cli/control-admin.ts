// `meshctl control admin token create|list|revoke`: the tokens that let the
// admin page and API scripts (Authorization: Bearer) administer the network.
import { InvalidArgumentError, type Command, type Option } from 'commander';
import { parseIpEndpoint } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';
import { printJson } from './context.js';

/** `--admin-listen IP:PORT`, checked when the command line is parsed. */
export function adminListenArg(v: string): { address: string; port: number } {
  try {
    const ep = parseIpEndpoint(v);
    return { address: ep.address.text, port: ep.port };
  } catch {
    throw new InvalidArgumentError(`"${terminalSafe(v, 80)}" is not IP:PORT (e.g. 127.0.0.1:8444 or [::1]:8444)`);
  }
}

export function registerAdminTokens(control: Command, stateDirOption: () => Option, mapControlError: (err: unknown) => never): void {
  const tokens = async () => (await import('../control/web/token-client.js')).adminTokens;
  const token = control
    .command('admin')
    .description('the admin page and API (https://CONTROL/admin/)')
    .command('token')
    .description('admin tokens: log in to the admin page, or send as Authorization: Bearer');
  token
    .command('create')
    .description('create an admin token; it is printed once, as the last line of stdout (only its hash is kept)')
    .addOption(stateDirOption())
    .option('--name <name>', 'a label for `token list`, e.g. alice-laptop', 'admin')
    .option('--json', 'print as JSON')
    .action(async (o: { stateDir: string; name: string; json?: boolean }) => {
      const t = await (await tokens()).create(o.stateDir, o.name).catch(mapControlError);
      if (o.json) return printJson(t);
      process.stderr.write(`admin token ${t.id} (${terminalSafe(t.name, 64)}); it is not shown again\n`);
      process.stdout.write(`${t.token}\n`);
    });
  token
    .command('list')
    .description('list admin tokens (ids and names; never the secrets)')
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (o: { stateDir: string; json?: boolean }) => {
      const list = await (await tokens()).list(o.stateDir).catch(mapControlError);
      if (o.json) return printJson(list);
      const rows = [['ID', 'NAME', 'CREATED'], ...list.map((t) => [t.id, terminalSafe(t.name, 64), t.created])];
      const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
      process.stdout.write(
        rows
          .map((r) =>
            r
              .map((c, i) => c.padEnd(w[i]!))
              .join('  ')
              .trimEnd(),
          )
          .join('\n') + '\n',
      );
    });
  token
    .command('revoke')
    .description('revoke an admin token: API calls with it and page sessions logged in with it stop at once')
    .argument('<id>', 'the ID column of `token list`')
    .addOption(stateDirOption())
    .action(async (id: string, o: { stateDir: string }) => {
      const r = await (await tokens()).revoke(o.stateDir, id).catch(mapControlError);
      process.stderr.write(`admin token ${r.id} revoked\n`);
    });
}
