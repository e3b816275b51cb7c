// `meshctl control policy get|set FILE|check FILE`: the network's access policy.
// `set` goes through the running server (nodes get the new rules at once) or
// the database; `check` needs neither and reports the first problem with its
// field and line:col.
import type { Command } from 'commander';
import { readFileSync } from '../util/cjs.js';
import { printJson } from './context.js';
import { CliError } from './errors.js';
import { admin, mapControlError, stateDirOption } from './control.js';

/** Reads the policy file, refusing one over the policy size limit before parsing it. */
async function readPolicyFile(file: string): Promise<string> {
  const { MAX_POLICY_BYTES } = await import('../policy/types.js');
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw new CliError('USAGE', `cannot read policy file ${file}: ${(err as Error).message}`);
  }
  if (buf.length > MAX_POLICY_BYTES) throw new CliError('USAGE', `${file} is larger than ${MAX_POLICY_BYTES} bytes (MAX_POLICY_BYTES)`);
  return buf.toString('utf8');
}

export function registerPolicy(control: Command): void {
  const policy = control.command('policy').description('the access policy: who may reach what (no policy: every node reaches every other)');
  policy
    .command('get')
    .description('print the policy in force (nothing, with a note on stderr, when there is none)')
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (o: { stateDir: string; json?: boolean }) => {
      const p = await (await admin()).getPolicy(o.stateDir).catch(mapControlError);
      if (o.json) return printJson(p);
      if (p.text === null) process.stderr.write('no policy: every node may reach every other\n');
      else process.stdout.write(p.text.endsWith('\n') ? p.text : `${p.text}\n`);
    });
  policy
    .command('set <file>')
    .description('check FILE (its tests must pass) and put it in force; nodes get their new rules within a second. A refused policy leaves the old one')
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (file: string, o: { stateDir: string; json?: boolean }) => {
      const text = await readPolicyFile(file);
      const r = await (await admin()).setPolicy(o.stateDir, text).catch(mapControlError);
      if (o.json) return printJson(r);
      process.stderr.write(`policy set: ${r.acls} acl entries, ${r.tests} tests passed\n`);
    });
  policy
    .command('check <file>')
    .description('check FILE offline (syntax, fields, its tests) without a server; errors name the field and line:col')
    .option('--json', 'print as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const text = await readPolicyFile(file);
      const { checkPolicy } = await import('../control/policy.js');
      const p = (() => {
        try {
          return checkPolicy(text);
        } catch (err) {
          return mapControlError(err);
        }
      })();
      const r = { acls: p.acls.length, tests: p.tests.length };
      if (o.json) return printJson(r);
      process.stderr.write(`${file}: ok, ${r.acls} acl entries, ${r.tests} tests passed\n`);
    });
}
