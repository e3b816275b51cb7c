// Tests that need root and network namespaces run in CI (CI runs as root).
// Elsewhere they skip loudly; in CI a missing capability is a failure, never a skip.
// A test that runs programs (wg, nft, miniupnpd, …) names them: when one is
// missing, the notice names its Debian package from deps/debian.json and the
// command that installs it.
import { existsSync } from 'node:fs';
import { skipOutsideCI } from './ci.js';
import { missingToolsReason } from './tools.js';

export function rootSkipReason(...tools: string[]): string | false {
  const isRoot = process.getuid?.() === 0;
  const hasTun = existsSync('/dev/net/tun');
  const noTools = missingToolsReason(['ip', ...tools]);
  if (isRoot && hasTun && !noTools) return false;
  const why = !isRoot ? 'needs root (CAP_NET_ADMIN) for namespaces and TUN' : !hasTun ? 'needs /dev/net/tun' : noTools;
  return skipOutsideCI('namespace test', !isRoot ? `${why}; run as root (sudo npm test) to include it` : `${why}`);
}
