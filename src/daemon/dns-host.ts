// The node's share of the mesh's name service (MagicDNS): the resolver's fixed
// addresses on the mesh interface, the resolver listening there (UDP and TCP
// port 53), its zone rebuilt from every map, and the OS resolver pointed at it
// (unless the node's accept-dns setting is off). Every step is serialised, and
// none of them may take the mesh down: a failure becomes a health line, the
// tunnel goes on. The OS configuration is undone on `down`, on exit, and, after
// a crash, at the next start before anything needs a name (recover).
import { networkInterfaces } from 'node:os';
import type { DnsQueryResponse, DnsStatus } from '../localapi/types.js';
import type { NetworkMap } from '../netmap/types.js';
import { addAddressesAndRoutes, removeAddresses } from '../tun/netconf.js';
import { hostPrefix, type IpAddress, type IpEndpoint, type IpPrefix, parseIp, parsePrefix, prefixContains } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';
import { queryDns } from '../dns/client.js';
import { DnsServer, type DnsStats } from '../dns/server.js';
import { reverseZones } from '../dns/names.js';
import { buildZone } from '../dns/zone.js';
import { OsDns, type OsDnsPlan, type OsDnsStatus } from '../osdns/os-dns.js';

/** The port every resolver listens on: the only one stub resolvers (glibc, resolved) can be told about. */
export const DNS_LISTEN_PORT = 53;
/**
 * How long binding the resolver's new addresses is retried while the kernel does not yet let an IPv6 one be bound
 * (seen on an interface made a moment before, under load: well under a second; 3 s leaves a wide margin).
 */
export const DNS_BIND_RETRY_MS = 3000;
/** Between those attempts. */
const DNS_BIND_RETRY_INTERVAL_MS = 20;
/** `meshctl dns query` waits this long for the daemon's own resolver: it answers mesh names at once, forwarded ones within its own 2 s limit. */
export const DNS_QUERY_TIMEOUT_MS = 5000;

export interface DnsHostOptions {
  stateDir: string;
  logger: (msg: string) => void;
  /** for tests: another port than 53, another resolv.conf, another bind retry time */
  port?: number;
  resolvConfPath?: string;
  bindRetryMs?: number;
}

/** What the node wants of DNS now: the map's config, the interface, the setting. */
interface Wanted {
  map: NetworkMap;
  ifname: string;
  acceptDns: boolean;
}

const LOOPBACK = [parsePrefix('127.0.0.0/8'), parsePrefix('::1/128')];

function endpointText(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The resolver's allowed sources include this host's addresses: re-read at most this often (a syscall per interface), as the endpoint poll does. */
const ALLOWED_REFRESH_MS = 1000;

export class DnsHost {
  private readonly os: OsDns;
  private readonly log: (msg: string) => void;
  private readonly port: number;
  private readonly bindRetryMs: number;
  private server: DnsServer | null = null;
  /** what the server's zone was built from (zoneInputs): a map that leaves it equal keeps the zone */
  private zoneKey: string | null = null;
  /** a map since the zone was last built may have changed a name or address (update's `names`): the key is worked out again */
  private namesDirty = true;
  /** when the allowed sources were last worked out (monotonic ms): this host's addresses are re-read at most every ALLOWED_REFRESH_MS */
  private allowedAtMs = -Infinity;
  private allowedFor: NetworkMap | null = null;
  /** the interface and the resolver addresses put on it, and the endpoints the server listens on */
  private ifname: string | null = null;
  private addresses: IpPrefix[] = [];
  private listening: { host: string; port: number }[] = [];
  /** the plan last given to the OS (JSON), null when the OS is as it was */
  private applied: string | null = null;
  private wanted: Wanted | null = null;
  /** sources the resolver answers: loopback, this host's addresses, the mesh prefixes */
  private allowed: IpPrefix[] = LOOPBACK;
  private errors = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();

  constructor(opts: DnsHostOptions) {
    this.log = opts.logger;
    this.port = opts.port ?? DNS_LISTEN_PORT;
    this.bindRetryMs = opts.bindRetryMs ?? DNS_BIND_RETRY_MS;
    this.os = new OsDns({ stateDir: opts.stateDir, resolvConfPath: opts.resolvConfPath });
  }

  /** Runs `step` after every step before it; never rejects (a failure is logged and kept as a health line until `onDone`). */
  private serial(what: string, step: () => Promise<void>, onDone: () => void = () => void this.errors.delete(what)): Promise<void> {
    const run = this.chain.then(step).then(onDone, (err: Error) => {
      const msg = `DNS: ${what} failed: ${terminalSafe(err?.message ?? String(err), 512)}`;
      if (this.errors.get(what) !== msg) this.log(msg);
      this.errors.set(what, msg);
    });
    this.chain = run;
    return run;
  }

  /** At daemon start, before anything resolves a name: undoes what a previous run (one that crashed) left in the OS. */
  recover(): Promise<void> {
    return this.serial('restoring the OS resolver a previous run left configured', async () => {
      const r = await this.os.recover();
      if (r.action === 'failed') throw new Error(r.detail);
      if (r.action !== 'none') this.log(`DNS: at start, ${r.action}: ${terminalSafe(r.detail, 512)}`);
    });
  }

  /**
   * Makes DNS match a new map (or the setting): listen, zone, OS. Called for every map; cheap when nothing changed.
   * `names`: false when the caller knows no name, address, DNS config or mesh prefix changed since the map before
   * (a delta of endpoints or online state): then the zone's inputs are not even compared, a walk of every peer.
   */
  update(map: NetworkMap, ifname: string, acceptDns: boolean, names = true): Promise<void> {
    this.wanted = { map, ifname, acceptDns };
    if (names) this.namesDirty = true;
    return this.serial('configuring DNS', () => this.reconcile());
  }

  /** On `down`, on exit, when the engine goes: the OS as it was, the resolver closed, its addresses removed. */
  stop(): Promise<void> {
    this.wanted = null;
    // once all is undone, no earlier failure is still true
    return this.serial(
      'restoring the OS resolver',
      () => this.teardown(),
      () => this.errors.clear(),
    );
  }

  private async reconcile(): Promise<void> {
    const w = this.wanted;
    if (!w) return;
    const dns = w.map.dns;
    if (!dns) return this.teardown();
    // this host's addresses are read from the OS (a syscall per interface): at most once per ALLOWED_REFRESH_MS, and for a new self
    const now = performance.now();
    if (now - this.allowedAtMs >= ALLOWED_REFRESH_MS || this.allowedFor?.self !== w.map.self || this.allowedFor.ipv4Prefix !== w.map.ipv4Prefix) {
      this.allowed = this.allowedSources(w.map);
      this.allowedAtMs = now;
      this.allowedFor = w.map;
    }
    const resolvers = dns.resolvers.map((r) => hostPrefix(parseIp(r)));
    const key = `${w.ifname}|${resolvers.map((r) => r.text).join()}`;
    if (!this.server || key !== `${this.ifname}|${this.addresses.map((r) => r.text).join()}`) {
      await this.closeServer();
      await addAddressesAndRoutes(w.ifname, resolvers, []);
      this.ifname = w.ifname;
      this.addresses = resolvers;
      const at = resolvers.map((r) => ({ host: r.address.text, port: this.port }));
      this.server = await this.listen(at);
      this.listening = at;
      this.log(`DNS: resolver listening on ${at.map((a) => endpointText(a.host, a.port)).join(', ')} for *.${dns.suffix}`);
    }
    // at thousands of peers building the zone takes hundreds of ms, and most maps (endpoints, online) leave it equal
    if (this.namesDirty || this.zoneKey === null) {
      this.namesDirty = false;
      const zoneKey = zoneInputs(w.map);
      if (zoneKey !== this.zoneKey) {
        this.server.setZone(buildZone(w.map));
        this.zoneKey = zoneKey;
      }
    }
    if (!w.acceptDns) return this.restoreOs();
    // the OS is pointed at the resolver only once it listens: a dead resolver in resolv.conf would break every name
    const plan: OsDnsPlan = {
      ifname: w.ifname,
      servers: resolvers.map((r) => r.address.text),
      searchDomains: [dns.suffix],
      // reverse lookups of mesh addresses go to the mesh resolver too (resolved mode; direct mode sends it everything)
      routingDomains: [
        dns.suffix,
        ...dns.routes.map((r) => r.domain),
        ...reverseZones(parsePrefix(w.map.ipv4Prefix)),
        ...reverseZones(parsePrefix(w.map.ipv6Prefix)),
      ],
    };
    const planKey = JSON.stringify(plan);
    if (planKey === this.applied) return;
    await this.os.apply(plan);
    this.applied = planKey;
    this.log(`DNS: ${this.os.status().mode} mode, search ${dns.suffix}`);
  }

  /**
   * A resolver listening on `at`. Its addresses are added without duplicate address detection (tun/netlink.ts), so
   * an IPv6 one is not tentative and bind() works at once; EADDRNOTAVAIL is still retried until DNS_BIND_RETRY_MS,
   * as a backstop for a link that is not ready yet. Anything else is thrown.
   */
  private async listen(at: { host: string; port: number }[]): Promise<DnsServer> {
    const start = performance.now();
    const deadline = start + this.bindRetryMs;
    for (let attempt = 1; ; attempt++) {
      const server = new DnsServer({ upstreams: () => this.upstreams(), allowSource: (ip: string) => this.allowSource(ip), log: this.log });
      try {
        await server.listen(at);
        if (attempt > 1) this.log(`DNS: the resolver's addresses took ${Math.round(performance.now() - start)} ms to become usable`);
        return server;
      } catch (err) {
        await server.close().catch(() => undefined);
        if ((err as NodeJS.ErrnoException).code !== 'EADDRNOTAVAIL' || performance.now() >= deadline) throw err;
      }
      await new Promise((r) => setTimeout(r, DNS_BIND_RETRY_INTERVAL_MS));
    }
  }

  private async restoreOs(): Promise<void> {
    if (this.applied === null) return;
    await this.os.restore();
    this.applied = null;
  }

  private async closeServer(): Promise<void> {
    const s = this.server;
    this.server = null;
    this.zoneKey = null;
    this.listening = [];
    await s?.close();
    if (this.ifname && this.addresses.length) await removeAddresses(this.ifname, this.addresses);
    this.addresses = [];
  }

  private async teardown(): Promise<void> {
    // the OS first: it must never point at a resolver that is gone
    let first: unknown = null;
    await this.restoreOs().catch((err: unknown) => (first = err));
    await this.closeServer().catch((err: unknown) => (first ??= err));
    if (first) throw first;
  }

  /** Loopback, every address of this host (the node's mesh addresses among them) and the mesh prefixes; nothing else. */
  private allowedSources(map: NetworkMap): IpPrefix[] {
    const out = [...LOOPBACK];
    for (const p of [map.ipv4Prefix, map.ipv6Prefix]) {
      try {
        out.push(parsePrefix(p));
      } catch {
        /* the map's prefixes were checked by its parser */
      }
    }
    const own = [...map.self.addresses, ...Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address))];
    for (const a of own) {
      try {
        out.push(hostPrefix(parseIp(a)));
      } catch {
        /* a link-local address with a zone: its scope is this host's own links */
      }
    }
    return out;
  }

  private allowSource(ip: string): boolean {
    let a: IpAddress;
    try {
      a = parseIp(ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip);
    } catch {
      return false;
    }
    return this.allowed.some((p) => prefixContains(p, a));
  }

  /**
   * Where names outside the mesh go: the host's resolvers from before meshctl changed them (with the OS left alone,
   * what resolv.conf names now), never our own addresses: forwarding to ourselves would loop.
   */
  private upstreams(): IpEndpoint[] {
    const own = new Set(this.addresses.map((a) => a.address.text));
    return this.os.upstreams().filter((e) => !own.has(e.address.text));
  }

  /** One line per problem, for `status`' health. */
  health(): string[] {
    return [...this.errors.values()];
  }

  status(acceptDns: boolean): DnsStatus {
    const dns = this.wanted?.map.dns;
    const os = this.os.status();
    const osOn = this.applied !== null;
    return {
      enabled: dns !== undefined,
      acceptDns,
      suffix: dns?.suffix ?? null,
      resolvers: dns?.resolvers ?? [],
      listening: this.listening.map((l) => endpointText(l.host, l.port)),
      mode: osOn ? os.mode : 'off',
      why: osOn
        ? os.why
        : !dns
          ? 'the control server sends no DNS config'
          : !acceptDns
            ? `accept-dns is false: the OS resolver is left alone (${os.detected})`
            : os.why,
      written: osOn ? writtenLines(os) : [],
      upstreams: this.upstreams().map((e) => endpointText(e.address.text, e.port)),
      routes: dns?.routes.map((r) => ({ domain: r.domain, resolvers: r.resolvers })) ?? [],
      records: dns?.records.length ?? 0,
      counters: this.server ? { ...this.server.stats() } : null,
      errors: this.health(),
    };
  }

  /** The resolver's counters (metrics.ts); null while it does not run. */
  counters(): DnsStats | null {
    return this.server?.stats() ?? null;
  }

  /** One question to the node's own resolver, over the network as any client asks it. */
  async query(name: string, type: string): Promise<DnsQueryResponse> {
    const at = this.listening[0];
    if (!at) throw new Error('the resolver is not listening: see `meshctl dns status`');
    const a = await queryDns(at, name, type, { timeoutMs: DNS_QUERY_TIMEOUT_MS });
    return { server: a.server, name, type, rcode: a.rcode, answers: a.answers, transport: a.transport, ms: a.elapsedMs };
  }
}

/** What was done to the OS, one line each: the file and how it was written, then its lines; or the resolvectl calls. */
function writtenLines(os: OsDnsStatus): string[] {
  if (os.mode === 'direct')
    return [
      `${os.resolvConfPath}, ${os.how ?? 'written'}; the original is kept in ${os.backupPath}:`,
      ...(os.written ?? '')
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`),
    ];
  if (os.mode === 'resolved') return os.calls.map((c) => `resolvectl ${c.join(' ')}`);
  return [];
}

/** Everything buildZone reads from a map (the DNS config, the mesh prefixes, each node's and device's name and addresses), as one string. */
export function zoneInputs(map: NetworkMap): string {
  const nodes = [map.self, ...map.peers, ...(map.devices ?? [])].map((n) => [n.name, n.addresses]);
  return JSON.stringify([map.dns, map.ipv4Prefix, map.ipv6Prefix, nodes]);
}
