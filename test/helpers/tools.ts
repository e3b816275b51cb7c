// The programs a test runs, checked before it runs them: a missing one makes
// the test skip outside CI (and fail in CI) with a notice naming the Debian
// packages from deps/debian.json and the command that installs them.
import { aptInstallCommand, findTool, packagesOfTools } from '../../src/util/tools.js';
import { skipOutsideCI } from './ci.js';

/** Why `tools` cannot all run here (missing ones, their packages, the install command), or false when they can. */
export function missingToolsReason(tools: readonly string[], pathEnv = process.env.PATH ?? ''): string | false {
  const missing = tools.filter((t) => findTool(t, pathEnv) === undefined);
  if (missing.length === 0) return false;
  const pkgs = packagesOfTools(missing);
  const from = pkgs.length > 0 ? ` (Debian packages: ${pkgs.join(', ')}): run \`${aptInstallCommand(pkgs)}\`, or \`sudo npm run test:full\`` : '';
  return `needs ${missing.join(', ')}, not found on PATH${from}`;
}

/** For `{ skip }`: false when `tools` are all here; else skips loudly (fails in CI) naming what to install. */
export function toolsSkipReason(what: string, tools: readonly string[]): string | false {
  const why = missingToolsReason(tools);
  return why === false ? false : skipOutsideCI(what, why);
}
