// The access policy's packet filter on this node: the map's packetFilter rules
// go to one stateful filter (engine/device/acl-filter.ts) installed on the
// engine, kept across maps so that a new rule set swaps the rules and keeps the
// flows. A map with no packetFilter (no policy) removes it: every packet
// passes and the engine tests one null field per packet.
import { AclFilter, type AclFilterStats } from '../engine/device/acl-filter.js';
import type { FilterRule } from '../netmap/types.js';
import type { IpPrefix } from '../util/netaddr.js';
import type { EngineHost } from './engine-host.js';

export class AccessFilter {
  private filter: AclFilter | null = null;
  private host: EngineHost | null = null;

  constructor(private readonly log: (msg: string) => void) {}

  /**
   * Applies one map's rules (undefined: allow all) on `host`. `devices`: the addresses of the stock-WireGuard devices this
   * node is the gateway of, whose packets open flows as this node's own (the destination's rules judge them).
   */
  apply(host: EngineHost, rules: FilterRule[] | undefined, devices: readonly IpPrefix[] = []): void {
    if (rules === undefined) {
      if (this.filter) host.setAccessFilter(null);
      this.filter = null;
      return;
    }
    if (this.filter && this.host === host) {
      this.filter.setLocalSources(devices);
      this.swap(this.filter, rules);
      return;
    }
    const f = new AclFilter([], { clock: host.clock });
    f.setLocalSources(devices);
    this.swap(f, rules);
    this.filter = f;
    this.host = host;
    host.setAccessFilter(f.hooks());
  }

  /** A rule set that does not compile leaves none in force: the node refuses new inbound flows rather than open up. */
  private swap(f: AclFilter, rules: FilterRule[]): void {
    try {
      f.setRules(rules);
    } catch (err) {
      this.log(`packet filter: ${(err as Error).message}; refusing new inbound flows until the next map`);
      f.setRules([]);
    }
  }

  /** Drop counts and flow table use, for `status --json`; null when no policy is in force. */
  stats(): AclFilterStats | null {
    return this.filter?.stats() ?? null;
  }
}
