// Tests that need root and network namespaces run in CI (CI runs as root).
// Elsewhere they skip loudly; in CI a missing capability is a failure, never a skip.
import { existsSync } from 'node:fs';
import { skipOutsideCI } from './ci.js';

export function rootSkipReason(): string | false {
  const isRoot = process.getuid?.() === 0;
  const hasTun = existsSync('/dev/net/tun');
  if (isRoot && hasTun) return false;
  const why = !isRoot ? 'needs root (CAP_NET_ADMIN) for namespaces and TUN' : 'needs /dev/net/tun';
  return skipOutsideCI('namespace test', `${why}; run as root (sudo npm test) to include it`);
}
