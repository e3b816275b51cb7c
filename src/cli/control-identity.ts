// `meshctl control users …`, `control authkey list|revoke` and `control nodes
// approve`: who owns what at the control server, through its admin socket.
import type { Command, Option } from 'commander';
import { printJson } from './context.js';
import type { admin as Admin } from '../control/admin-client.js';

export interface IdentityCliDeps {
  admin: () => Promise<typeof Admin>;
  stateDirOption: () => Option;
  mapControlError: (err: unknown) => never;
  table: (rows: string[][]) => string;
}

/** What owns a node or key, as one cell: the user, the tags, or "-". */
export const ownerCell = (o: { user: string | null; tags: string[] }): string => o.user ?? (o.tags.length > 0 ? o.tags.join(',') : '-');

export function registerUsers(control: Command, d: IdentityCliDeps): void {
  const users = control.command('users').description('the users of the network: nodes and auth keys belong to one');
  users
    .command('create <name>')
    .description('create a user (lower-case letters, digits, . _ -; at most 64 characters)')
    .addOption(d.stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (name: string, o: { stateDir: string; json?: boolean }) => {
      const r = await (await d.admin()).createUser(o.stateDir, name).catch(d.mapControlError);
      if (o.json) return printJson(r);
      process.stderr.write(`user ${r.name} created\n`);
    });
  users
    .command('list')
    .description('list users with how many nodes and auth keys each owns')
    .addOption(d.stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (o: { stateDir: string; json?: boolean }) => {
      const list = await (await d.admin()).listUsers(o.stateDir).catch(d.mapControlError);
      if (o.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no users\n');
      process.stdout.write(d.table([['NAME', 'NODES', 'AUTHKEYS', 'CREATED'], ...list.map((u) => [u.name, String(u.nodes), String(u.authKeys), u.created])]));
    });
  users
    .command('delete <name>')
    .description('delete a user; refused while it owns nodes or auth keys, unless --force, which DELETES those nodes and keys too')
    .addOption(d.stateDirOption())
    .option('--force', "also delete the user's nodes (they leave every map at once) and auth keys")
    .option('--json', 'print as JSON')
    .action(async (name: string, o: { stateDir: string; force?: boolean; json?: boolean }) => {
      const r = await (await d.admin()).deleteUser(o.stateDir, name, o.force === true).catch(d.mapControlError);
      if (o.json) return printJson(r);
      const also = r.deletedNodes.length + r.deletedAuthKeys > 0 ? ` with ${r.deletedNodes.length} node(s) and ${r.deletedAuthKeys} auth key(s)` : '';
      process.stderr.write(`user ${r.name} deleted${also}\n`);
    });
}

export function registerAuthKeyAdmin(authkey: Command, d: IdentityCliDeps): void {
  authkey
    .command('list')
    .description('list auth keys: id, public prefix (never the secret), owner or tags, flags, expiry, uses, revoked')
    .addOption(d.stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (o: { stateDir: string; json?: boolean }) => {
      const list = await (await d.admin()).listAuthKeys(o.stateDir).catch(d.mapControlError);
      if (o.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no auth keys\n');
      const flags = (k: (typeof list)[number]): string => [k.reusable ? 'reusable' : 'single-use', ...(k.ephemeral ? ['ephemeral'] : [])].join(',');
      const state = (k: (typeof list)[number]): string => (k.revoked ? 'revoked' : k.expired ? 'expired' : !k.reusable && k.used > 0 ? 'used' : 'valid');
      process.stdout.write(
        d.table([
          ['ID', 'PREFIX', 'OWNER', 'FLAGS', 'EXPIRES', 'USED', 'STATE'],
          ...list.map((k) => [k.id, `${k.prefix}-…`, ownerCell(k), flags(k), k.expires ?? 'never', String(k.used), state(k)]),
        ]),
      );
    });
  authkey
    .command('revoke <id>')
    .description('revoke an auth key (ID from `authkey list`): it registers no more nodes; the nodes it registered stay')
    .addOption(d.stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (id: string, o: { stateDir: string; json?: boolean }) => {
      const r = await (await d.admin()).revokeAuthKey(o.stateDir, id).catch(d.mapControlError);
      if (o.json) return printJson(r);
      process.stderr.write(`auth key ${r.id} ${r.alreadyRevoked ? 'was already revoked' : 'revoked'}; nodes it registered stay\n`);
    });
}

export function registerNodeApprove(nodes: Command, d: IdentityCliDeps): void {
  nodes
    .command('approve <node>')
    .description('let a node that waits for approval (control serve --require-approval) into the network; it joins every map at once')
    .addOption(d.stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (ref: string, o: { stateDir: string; json?: boolean }) => {
      const r = await (await d.admin()).approveNode(o.stateDir, ref).catch(d.mapControlError);
      if (o.json) return printJson(r);
      process.stderr.write(`node ${r.name} (id ${r.id}) ${r.alreadyApproved ? 'was already approved' : 'approved'}\n`);
    });
}
