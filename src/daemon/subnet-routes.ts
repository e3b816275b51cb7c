// Subnet routing on a node, both sides of it.
// As a client (accept-routes): every online peer's approved primary routes go
// into meshctl's table 52 through the mesh interface, behind rule 5270 (and
// the fwmark rules 5210/5230/5250 that keep meshctl's own sockets out of the
// tunnel; tun/rules.ts), reconciled on each map. A route that overlaps one of
// this host's own LAN prefixes is not installed, so the mesh never takes the
// host's own network away from it; status says so.
// As a router (advertise-routes): forwarding must be on (read from /proc and
// reported, never changed), forwarded traffic is masqueraded unless
// snat-subnet-routes is off (snat.ts), and decrypted packets are checked by
// destination (destinationPolicy, engine/device/destination-filter.ts).
// Everything it adds is removed on stop, and at start when a killed daemon
// left it behind.
import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import type { NetworkMap, NodeView } from '../netmap/types.js';
import type { PeerRouteStatus, RoutesStatus } from '../localapi/types.js';
import type { DestinationPolicy } from '../engine/device/destination-filter.js';
import { flushTable, installMeshRules, removeMeshRules, updateTableRoutes } from '../tun/rules.js';
import { hostPrefix, parseIp, parsePrefix, prefixesOverlap, type IpPrefix } from '../util/netaddr.js';
import { maskedPrefix } from '../netmap/routes.js';
import type { RoutePrefs } from './route-prefs.js';
import { runNft, snatRemoval, snatRuleset } from './snat.js';
import { EXIT_ROUTES, servesAsExitNode } from './exit-node.js';

/** A host network this node is on: a prefix of one of its interfaces (not the mesh's, not loopback). */
export interface HostNetwork {
  prefix: IpPrefix;
  ifname: string;
}

/** The networks of this host's interfaces, from their addresses, except `meshIfname`'s and loopback. */
export function hostNetworks(meshIfname: string): HostNetwork[] {
  const out: HostNetwork[] = [];
  for (const [ifname, addrs] of Object.entries(networkInterfaces())) {
    if (ifname === meshIfname) continue;
    for (const a of addrs ?? []) {
      if (a.internal || !a.cidr) continue;
      try {
        const p = parsePrefix(a.cidr);
        if (p.address.family === 6 && p.address.text.startsWith('fe80:')) continue; // link-local: never a route
        out.push({ prefix: maskedPrefix(p), ifname });
      } catch {
        /* an address Node reports oddly is no LAN of ours to protect */
      }
    }
  }
  return out;
}

const prefixesOf = (list: readonly string[] | undefined): IpPrefix[] => {
  const out: IpPrefix[] = [];
  for (const t of list ?? []) {
    try {
      out.push(parsePrefix(t));
    } catch {
      /* the map parser admits only canonical prefixes; anything else is skipped, never installed */
    }
  }
  return out;
};

/**
 * What this node accepts from its peers, by destination: its own addresses, the DNS resolver's addresses, the
 * routes control made it primary for, the addresses of devices it is the gateway of, and, when control approved it as
 * an exit node, every destination (anyV4/anyV6). Callers add to `prefixes` for anything else the node serves.
 */
export function destinationPolicy(map: NetworkMap): DestinationPolicy {
  const prefixes: IpPrefix[] = [];
  const hosts = [...map.self.addresses, ...(map.dns?.resolvers ?? [])];
  for (const d of map.devices ?? []) if (d.gateway === map.self.name) hosts.push(...d.addresses);
  for (const a of hosts) {
    try {
      prefixes.push(hostPrefix(parseIp(a)));
    } catch {
      /* not an address: nothing is accepted for it */
    }
  }
  prefixes.push(...prefixesOf(map.self.primaryRoutes));
  // an approved exit node carries traffic to anywhere, IPv4 and IPv6
  const exit = map.self.exitNode === true;
  return { prefixes, anyV4: exit, anyV6: exit };
}

/** Forwarding as /proc says, for one family: null when it cannot be read. */
export function readForwarding(family: 4 | 6): boolean | null {
  const file = family === 4 ? '/proc/sys/net/ipv4/ip_forward' : '/proc/sys/net/ipv6/conf/all/forwarding';
  try {
    return readFileSync(file, 'utf8').trim() === '1';
  } catch {
    return null;
  }
}

/** The command that turns forwarding on, named in the warning (meshctl never changes sysctls itself). */
export function forwardingFix(family: 4 | 6): string {
  return family === 4 ? 'sysctl -w net.ipv4.ip_forward=1' : 'sysctl -w net.ipv6.conf.all.forwarding=1';
}

export interface SubnetRoutesOptions {
  logger: (msg: string) => void;
  /** the host's networks (default: from its interfaces); tests give fixed ones */
  hostNetworks?: (meshIfname: string) => HostNetwork[];
  /** forwarding per family (default: /proc) */
  forwarding?: (family: 4 | 6) => boolean | null;
}

interface Wanted {
  map: NetworkMap;
  ifname: string;
  prefs: RoutePrefs;
}

/** Why a peer's route is not installed here, or null when it should be. */
type Verdict = { prefix: IpPrefix; why: string | null };

export class SubnetRoutes {
  /** prefix text → prefix, in table 52 now */
  private installed = new Map<string, IpPrefix>();
  private installedIfname = '';
  /** with an exit node and LAN access: the host's LAN prefixes routed in table 52 through their own interface (prefix text → network) */
  private lanInstalled = new Map<string, HostNetwork>();
  private rulesInstalled = false;
  /** the SNAT ruleset in force (its JSON), '' when none */
  private snatKey = '';
  private wanted: Wanted | null = null;
  private chain: Promise<void> = Promise.resolve();
  private errors: string[] = [];
  /** the families of the routes this node advertises: their forwarding is read (live) for health and status */
  private advertisedFamilies = { v4: false, v6: false };
  /** per prefix text: the verdict of the last reconcile (installed or why not) */
  private verdicts = new Map<string, string | null>();

  constructor(private readonly opts: SubnetRoutesOptions) {}

  /** At daemon start: a killed daemon's rules, table-52 routes and SNAT table are removed. */
  recover(): Promise<void> {
    return this.serial(async () => {
      const n = await flushTable().catch((err: Error) => (this.opts.logger(`removing stale routes: ${err.message}`), 0));
      await removeMeshRules().catch((err: Error) => this.opts.logger(`removing stale routing rules: ${err.message}`));
      await runNft(snatRemoval()).catch(() => undefined); // no nft, or no table: nothing to remove
      if (n > 0) this.opts.logger(`removed ${n} stale route${n === 1 ? '' : 's'} from table 52`);
    });
  }

  /** Makes routes, rules and SNAT match `map` and the settings; serialised, and only the latest wish is applied. */
  update(map: NetworkMap, ifname: string, prefs: RoutePrefs): Promise<void> {
    this.wanted = { map, ifname, prefs };
    return this.serial(() => this.reconcile());
  }

  /** Removes everything this node added (down, exit); the interface may already be gone. */
  stop(): Promise<void> {
    this.wanted = null;
    return this.serial(async () => {
      await this.clear();
      this.errors = [];
      this.verdicts.clear();
      this.advertisedFamilies = { v4: false, v6: false };
    });
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async clear(): Promise<void> {
    const errors: string[] = [];
    await this.updateLanRoutes([], errors);
    if (this.installed.size > 0) {
      await updateTableRoutes(this.installedIfname, [], [...this.installed.values()]).catch((err: Error) => errors.push(err.message));
      this.installed.clear();
    }
    if (this.rulesInstalled) {
      await removeMeshRules().catch((err: Error) => errors.push(err.message));
      this.rulesInstalled = false;
    }
    if (this.snatKey) {
      await runNft(snatRemoval()).catch((err: Error) => errors.push(`removing the SNAT table: ${err.message}`));
      this.snatKey = '';
    }
    for (const e of errors) this.opts.logger(e);
  }

  /** Each peer route's verdict: install it, or why not. */
  private verdictsFor(w: Wanted): Map<string, Verdict> {
    const lans = (this.opts.hostNetworks ?? hostNetworks)(w.ifname);
    const own = prefixesOf(w.prefs.advertiseRoutes);
    const out = new Map<string, Verdict>();
    for (const peer of w.map.peers) {
      const primary = new Set(peer.primaryRoutes ?? []);
      for (const prefix of prefixesOf(peer.routes)) {
        let why: string | null = null;
        if (!primary.has(prefix.text)) why = 'not primary: another router carries it';
        else if (!w.prefs.acceptRoutes) why = 'accept-routes is off';
        else if (!peer.online) why = 'router offline';
        else {
          const lan = lans.find((l) => prefixesOverlap(l.prefix, prefix));
          if (lan) why = `overlaps this host's LAN ${lan.prefix.text} (${lan.ifname})`;
          else if (own.some((o) => prefixesOverlap(o, prefix))) why = 'overlaps a route this node advertises';
        }
        const prev = out.get(prefix.text);
        // the same prefix from two peers: control makes only one of them primary
        if (!prev || (prev.why !== null && why === null)) out.set(prefix.text, { prefix, why });
      }
    }
    return out;
  }

  private async reconcile(): Promise<void> {
    const w = this.wanted;
    if (!w) return;
    const errors: string[] = [];
    const verdicts = this.verdictsFor(w);
    const want = new Map<string, IpPrefix>();
    for (const [text, v] of verdicts) if (v.why === null) want.set(text, v.prefix);
    // an exit node in use: both default routes into the mesh, whatever its state (offline means dropped, never leaked)
    const exitOn = w.prefs.exitNode !== '';
    if (exitOn) for (const p of EXIT_ROUTES) want.set(p.text, p);
    const rulesWanted = w.prefs.acceptRoutes || exitOn;
    if (this.installedIfname !== w.ifname && this.installed.size > 0) await this.clear();
    this.installedIfname = w.ifname;
    if (rulesWanted && !this.rulesInstalled) {
      try {
        await installMeshRules();
        this.rulesInstalled = true;
      } catch (err) {
        errors.push((err as Error).message);
      }
    } else if (!rulesWanted && this.rulesInstalled && want.size === 0) {
      await removeMeshRules().catch((err: Error) => errors.push(err.message));
      this.rulesInstalled = false;
    }
    const add = [...want].filter(([t]) => !this.installed.has(t)).map(([, p]) => p);
    const remove = [...this.installed].filter(([t]) => !want.has(t)).map(([, p]) => p);
    try {
      await updateTableRoutes(w.ifname, add, remove);
      for (const p of add) this.installed.set(p.text, p);
      for (const p of remove) this.installed.delete(p.text);
    } catch (err) {
      errors.push((err as Error).message);
      // what the kernel holds is not known exactly: removals are retried next time, additions too
      for (const p of remove) this.installed.delete(p.text);
    }
    await this.updateLanRoutes(exitOn && w.prefs.exitNodeAllowLanAccess ? (this.opts.hostNetworks ?? hostNetworks)(w.ifname) : [], errors);
    this.verdicts = new Map([...verdicts].map(([t, v]) => [t, v.why ?? (this.installed.has(t) ? null : 'not installed: see health')]));
    await this.router(w, errors);
    this.errors = errors;
    for (const e of errors) this.opts.logger(`subnet routes: ${e}`);
  }

  /**
   * With an exit node and LAN access, each of the host's LAN prefixes gets a route in table 52 through its own
   * interface, ahead of the default routes into the mesh, so the LAN stays local. `want` replaces what is there.
   */
  private async updateLanRoutes(want: readonly HostNetwork[], errors: string[]): Promise<void> {
    const key = (n: HostNetwork): string => `${n.prefix.text} ${n.ifname}`;
    const wanted = new Map(want.map((n) => [key(n), n]));
    const byIf = new Map<string, { add: IpPrefix[]; remove: IpPrefix[] }>();
    const slot = (ifname: string) => byIf.get(ifname) ?? byIf.set(ifname, { add: [], remove: [] }).get(ifname)!;
    for (const [k, n] of wanted) if (!this.lanInstalled.has(k)) slot(n.ifname).add.push(n.prefix);
    for (const [k, n] of this.lanInstalled) if (!wanted.has(k)) slot(n.ifname).remove.push(n.prefix);
    for (const [ifname, { add, remove }] of byIf) {
      try {
        await updateTableRoutes(ifname, add, remove);
      } catch (err) {
        errors.push(`LAN access with the exit node: ${(err as Error).message}`);
      }
    }
    this.lanInstalled = wanted;
  }

  /** The router's side: forwarding read and reported, SNAT for the routes it advertises (and everything, as exit node). */
  private async router(w: Wanted, errors: string[]): Promise<void> {
    const exit = servesAsExitNode(w.map.self, w.prefs);
    const advertised = [...prefixesOf(w.prefs.advertiseRoutes), ...(exit ? EXIT_ROUTES : [])];
    this.advertisedFamilies = { v4: advertised.some((p) => p.address.family === 4), v6: advertised.some((p) => p.address.family === 6) };
    const snat = w.prefs.snatSubnetRoutes && advertised.length > 0 ? snatRuleset(w.ifname, advertised) : null;
    const key = snat ? JSON.stringify(snat) : '';
    if (key === this.snatKey) return;
    try {
      await runNft(snat ?? snatRemoval());
      this.snatKey = key;
    } catch (err) {
      errors.push(`${snat ? 'setting up' : 'removing'} SNAT: ${(err as Error).message}`);
    }
  }

  /** Forwarding of each family this node advertises routes of, read now (an administrator may have just turned it on). */
  private forwarding(): { ipv4: boolean | null; ipv6: boolean | null } {
    const read = this.opts.forwarding ?? readForwarding;
    return { ipv4: this.advertisedFamilies.v4 ? read(4) : null, ipv6: this.advertisedFamilies.v6 ? read(6) : null };
  }

  /** One line per problem, for status' health. */
  health(): string[] {
    const out = [...this.errors];
    const fwd = this.forwarding();
    for (const fam of [4, 6] as const) {
      const on = fam === 4 ? fwd.ipv4 : fwd.ipv6;
      if (on === false) out.push(`IPv${fam} forwarding is off: advertised IPv${fam} routes carry nothing; run \`${forwardingFix(fam)}\``);
    }
    return out;
  }

  /** A peer's routes as status shows them. */
  peerRoutes(peer: NodeView): PeerRouteStatus[] | undefined {
    if (!peer.routes?.length) return undefined;
    const primary = new Set(peer.primaryRoutes ?? []);
    return peer.routes.map((prefix) => {
      const isPrimary = primary.has(prefix);
      const installed = isPrimary && this.installed.has(prefix);
      const verdict = isPrimary ? this.verdicts.get(prefix) : 'not primary: another router carries it';
      return { prefix, primary: isPrimary, installed, why: installed ? null : (verdict ?? 'not installed yet') };
    });
  }

  status(self: NodeView | null, prefs: RoutePrefs, droppedDestination: number): RoutesStatus {
    return {
      advertised: prefs.advertiseRoutes,
      approved: self?.routes ?? [],
      primary: self?.primaryRoutes ?? [],
      acceptRoutes: prefs.acceptRoutes,
      snatSubnetRoutes: prefs.snatSubnetRoutes,
      forwarding: this.forwarding(),
      droppedDestination,
    };
  }
}
