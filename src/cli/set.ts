// `meshctl set`: change one setting of the node without repeating every flag
// of `up` (a common complaint about Tailscale's `up`).
import { type Command, Option } from 'commander';
import { LOCALAPI, type PrefsRequest } from '../localapi/types.js';
import { boolArg, clientOf, socketOf } from './context.js';
import { CliError, fromApi } from './errors.js';

export function registerSet(program: Command): void {
  program
    .command('set')
    .description('change one setting of the node')
    .option('--operator <user>', 'a user (name or uid) who may change the node besides root; "" to clear')
    .option('--hostname <name>', 'the name to register with at the next `up`')
    .addOption(new Option('--accept-dns [bool]', "point this host's resolver at the mesh's names (true/false)").argParser(boolArg).preset('true'))
    .action(async (o: { operator?: string; hostname?: string; acceptDns?: boolean }, cmd: Command) => {
      const req: PrefsRequest = {};
      if (o.operator !== undefined) req.operator = o.operator === '' ? null : o.operator;
      if (o.hostname !== undefined) req.hostname = o.hostname;
      if (o.acceptDns !== undefined) req.acceptDns = o.acceptDns;
      if (Object.keys(req).length === 0) throw new CliError('USAGE', 'nothing to set: pass --operator, --hostname or --accept-dns');
      await clientOf(cmd)
        .post(LOCALAPI.prefs, req)
        .catch((e: unknown) => Promise.reject(fromApi(e, socketOf(cmd))));
    });
}
