// `meshctl down` and `meshctl logout`.
import type { Command } from 'commander';
import { LOCALAPI, type Status } from '../localapi/types.js';
import { clientOf, printJson, socketOf } from './context.js';
import { fromApi } from './errors.js';

export function registerDown(program: Command): void {
  program
    .command('down')
    .description('stop carrying traffic and leave the network map; keep identity and settings')
    .option('--json', 'print the resulting status as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const s = await clientOf(cmd)
        .post<Status>(LOCALAPI.down)
        .catch((e: unknown) => Promise.reject(fromApi(e, socketOf(cmd))));
      if (o.json) printJson(s);
      else process.stderr.write('meshctl is down; `meshctl up` brings it back with the same identity\n');
    });
  program
    .command('logout')
    .description('forget the node key here and at the control server')
    .option('--json', 'print the resulting status as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const s = await clientOf(cmd)
        .post<Status>(LOCALAPI.logout)
        .catch((e: unknown) => Promise.reject(fromApi(e, socketOf(cmd))));
      if (o.json) printJson(s);
      else process.stderr.write('logged out; `meshctl up --auth-key KEY` joins again as a new node\n');
    });
}
