// Tests that need root and network namespaces run in CI (any non-empty CI runs as root).
// Elsewhere they skip loudly; in CI a missing capability is a failure, never a skip.
import { existsSync } from 'node:fs';

export function rootSkipReason(): string | false {
  const isRoot = process.getuid?.() === 0;
  const hasTun = existsSync('/dev/net/tun');
  if (isRoot && hasTun) return false;
  const why = !isRoot ? 'needs root (CAP_NET_ADMIN) for namespaces and TUN' : 'needs /dev/net/tun';
  if (process.env.CI) {
    throw new Error(`namespace test cannot run in CI: ${why}`);
  }
  process.stderr.write(`\n*** SKIPPING namespace test: ${why}. Run as root (sudo npm test) to include it. ***\n`);
  return why;
}
