// The version printed by `meshctl version`, read from package.json at run time
// so it cannot drift from what npm installed.
import { readFileSync } from '../util/cjs.js';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export function packageRoot(): string {
  // dist/src/cli/version.js → repo root is three levels up
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

export function meshctlVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
