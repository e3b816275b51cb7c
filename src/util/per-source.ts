// Per-source accounting for listeners that face the internet: the key of a
// connection's source (an IPv4 address, or the /64 of an IPv6 address, since
// one host usually holds a whole /64 to pick addresses from) and a count of
// what each source holds open, capped per source. The control server and the
// relay count their connections with it.
import { isIPv4 } from 'node:net';
import { ipBytes, parseIp } from './netaddr.js';

/**
 * The per-source key of a remote address as a socket reports it: an IPv4
 * address (also when it comes IPv4-mapped, `::ffff:a.b.c.d`), or `<hex>/64`
 * for an IPv6 address. A missing address is `unknown`: all such share a key.
 */
export function sourceKey(remote: string | undefined): string {
  if (!remote) return 'unknown';
  if (remote.startsWith('::ffff:') && isIPv4(remote.slice(7))) return remote.slice(7);
  try {
    const ip = parseIp(remote);
    return ip.family === 4 ? ip.text : `${ipBytes(ip).subarray(0, 8).toString('hex')}/64`;
  } catch {
    return remote;
  }
}

/**
 * How many things (connections) each source holds, at most `max` per source.
 * The map holds only sources with a count above zero, so its size is bounded
 * by what is open.
 */
export class PerSourceCounter {
  private readonly counts = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Counts one more for `key`; false, counting nothing, when `key` already holds `max`. */
  tryAdd(key: string): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  /** Counts one fewer for `key` (one that tryAdd counted). */
  remove(key: string): void {
    const left = (this.counts.get(key) ?? 1) - 1;
    if (left > 0) this.counts.set(key, left);
    else this.counts.delete(key);
  }

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** sources holding at least one */
  get sources(): number {
    return this.counts.size;
  }
}
