// The access policy's packet filter on this node: the map's packetFilter rules
// go to one stateful filter (engine/device/acl-filter.ts) installed on the
// engine, kept across maps so that a new rule set swaps the rules and keeps the
// flows. A map with no packetFilter (no policy) removes it: every packet
// passes and the engine tests one null field per packet. The filter object, and
// its flow tables (~4.7 MiB, flow-table.ts), live as long as the daemon: a new
// engine (`down` and `up`) or a policy after none gets the same tables emptied,
// not new ones, so restarts do not leave a dead table per engine to the collector.
import { AclFilter, type AclFilterStats } from '../engine/device/acl-filter.js';
import type { Clock } from '../engine/clock.js';
import type { FilterRule } from '../netmap/types.js';
import type { IpPrefix } from '../util/netaddr.js';
import type { EngineHost } from './engine-host.js';

export interface AccessFilterOptions {
  /** makes the filter (tests count the calls); a new AclFilter by default */
  create?: (clock: Clock) => AclFilter;
}

export class AccessFilter {
  /** kept while the daemon runs, installed or not; made again only for an engine on another clock (tests) */
  private filter: AclFilter | null = null;
  private clock: Clock | null = null;
  /** the engine the filter is installed on; null while no policy is in force */
  private host: EngineHost | null = null;
  private readonly create: (clock: Clock) => AclFilter;

  constructor(
    private readonly log: (msg: string) => void,
    opts: AccessFilterOptions = {},
  ) {
    this.create = opts.create ?? ((clock) => new AclFilter([], { clock }));
  }

  /**
   * Applies one map's rules (undefined: allow all) on `host`. `devices`: the addresses of the stock-WireGuard devices this
   * node is the gateway of, whose packets open flows as this node's own (the destination's rules judge them).
   */
  apply(host: EngineHost, rules: FilterRule[] | undefined, devices: readonly IpPrefix[] = []): void {
    if (rules === undefined) {
      if (this.host) host.setAccessFilter(null);
      this.host = null;
      return;
    }
    if (this.filter && this.host === host) {
      this.filter.setLocalSources(devices);
      this.swap(this.filter, rules);
      return;
    }
    let f = this.filter;
    if (f && this.clock === host.clock) f.clearFlows();
    else {
      f = this.create(host.clock);
      this.filter = f;
      this.clock = host.clock;
    }
    f.setLocalSources(devices);
    this.swap(f, rules);
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
    return this.host ? (this.filter?.stats() ?? null) : null;
  }
}
