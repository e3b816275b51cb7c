// `meshctl set`: change one setting of the node without repeating every flag
// of `up` (a common complaint about Tailscale's `up`).
import { type Command, Option } from 'commander';
import { LOCALAPI, type ExitNodeSettings, type PrefsRequest } from '../localapi/types.js';
import { boolArg, clientOf, prefixListArg, socketOf } from './context.js';
import { CliError, fromApi } from './errors.js';

interface SetOpts extends ExitNodeSettings {
  operator?: string;
  hostname?: string;
  acceptDns?: boolean;
  advertiseRoutes?: string[];
  acceptRoutes?: boolean;
  snatSubnetRoutes?: boolean;
}

export function registerSet(program: Command): void {
  program
    .command('set')
    .description('change one setting of the node')
    .option('--operator <user>', 'a user (name or uid) who may change the node besides root; "" to clear')
    .option('--hostname <name>', 'the name to register with at the next `up`')
    .addOption(new Option('--accept-dns [bool]', "point this host's resolver at the mesh's names (true/false)").argParser(boolArg).preset('true'))
    .addOption(new Option('--advertise-routes <prefixes>', 'offer these subnets to the mesh, comma-separated ("" withdraws all)').argParser(prefixListArg))
    .addOption(new Option('--advertise-exit-node [bool]', 'offer this node as an exit node (true/false)').argParser(boolArg).preset('true'))
    .option('--exit-node <name|ip>', 'send internet traffic through this approved exit node ("" turns it off)')
    .addOption(
      new Option('--exit-node-allow-lan-access [bool]', "with an exit node, keep this host's LAN local (true/false)").argParser(boolArg).preset('true'),
    )
    .addOption(new Option('--accept-routes [bool]', 'install the subnet routes peers advertise (true/false)').argParser(boolArg).preset('true'))
    .addOption(new Option('--snat-subnet-routes [bool]', 'masquerade forwarded subnet traffic (true/false)').argParser(boolArg).preset('true'))
    .action(async (o: SetOpts, cmd: Command) => {
      const req: PrefsRequest = {};
      if (o.operator !== undefined) req.operator = o.operator === '' ? null : o.operator;
      if (o.hostname !== undefined) req.hostname = o.hostname;
      if (o.acceptDns !== undefined) req.acceptDns = o.acceptDns;
      if (o.advertiseRoutes !== undefined) req.advertiseRoutes = o.advertiseRoutes;
      if (o.acceptRoutes !== undefined) req.acceptRoutes = o.acceptRoutes;
      if (o.snatSubnetRoutes !== undefined) req.snatSubnetRoutes = o.snatSubnetRoutes;
      if (o.advertiseExitNode !== undefined) req.advertiseExitNode = o.advertiseExitNode;
      if (o.exitNode !== undefined) req.exitNode = o.exitNode;
      if (o.exitNodeAllowLanAccess !== undefined) req.exitNodeAllowLanAccess = o.exitNodeAllowLanAccess;
      if (Object.keys(req).length === 0) {
        throw new CliError(
          'USAGE',
          'nothing to set: pass --operator, --hostname, --accept-dns, --advertise-routes, --accept-routes, --snat-subnet-routes, --advertise-exit-node, --exit-node or --exit-node-allow-lan-access',
        );
      }
      await clientOf(cmd)
        .post(LOCALAPI.prefs, req)
        .catch((e: unknown) => Promise.reject(fromApi(e, socketOf(cmd))));
    });
}
