// The network's membership rules on top of the store: registration (auth key
// or an already-known node key), hostnames kept unique, key expiry, and the
// view of the network each node is allowed to see.
import { allocateAddresses, IPV4_PREFIX, ipv6Prefix } from './addresses.js';
import { cachedStore, everythingTouched, type Touched } from './cached-store.js';
import { redeemAuthKey } from './authkeys.js';
import { dnsForMap, loadDns } from './dns.js';
import { ControlError } from './protocol.js';
import { activeRoutes, PrimaryElection, type ActiveRoutes } from './routes.js';
import { MapChanges } from './map-changes.js';
import { NetworkSnapshot } from './snapshot.js';
import { NetworkView } from './network-view.js';
import type { DnsConfig, NetworkMap, NodeView, RegisterResult, RelayRegion } from '../netmap/types.js';
import type { ControlStore, StoreTx, DeviceRecord, NodeRecord, RouteApprovalRecord } from './store.js';
import type { RegisterIn } from './validate.js';
import { isoTime } from '../util/time.js';
import { nodeOwner } from './policy.js';
import { PolicyEngine } from '../policy/engine.js';
import { parsePolicy } from '../policy/parse.js';
import type { Policy, PolicyNode } from '../policy/types.js';

/** The position of node `id` in `nodes` (ordered by id), or where it would go. */
function indexById(nodes: readonly NodeRecord[], id: number): number {
  let lo = 0;
  let hi = nodes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (nodes[mid]!.id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One DNS label. */
const MAX_HOSTNAME = 63;
/** Digits a clashing name's number may take ("-1" … "-9999999999"): more nodes than the address range holds. */
const HOSTNAME_SUFFIX_DIGITS = 10;

export function sanitizeHostname(h: string): string {
  const s = h
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_HOSTNAME);
  return s || 'node';
}

export interface RegistryOptions {
  /** node key lifetime; null: keys never expire */
  keyExpiryMs: number | null;
  /** new nodes wait in no map until an admin approves them (`control serve --require-approval`) */
  requireApproval?: boolean;
  now?: () => number;
}

/**
 * What maps are built from, read from the store after every change: a map is
 * built per stream per change, so it reads memory, not the database.
 */
interface StoredNetwork {
  nodes: NodeRecord[];
  devices: DeviceRecord[];
  approvals: RouteApprovalRecord[];
  dns: DnsConfig;
  policyText: string | null;
  ipv6Prefix: string;
}

export class Registry {
  private readonly now: () => number;
  /** the store; every write through it (and every transaction) reloads `net` before it resolves */
  readonly store: ControlStore;
  private net: StoredNetwork;
  /** re-reads run one after another, each reading after the write it follows, so an older read never lands last */
  private reading: Promise<void> = Promise.resolve();
  private readonly election = new PrimaryElection();
  /** what changed between snapshots, so a broadcast builds only the maps a change may reach */
  readonly changes = new MapChanges();
  /** each node's pieces from the last snapshot, rebuilt only for the nodes a change touched */
  readonly netView = new NetworkView();
  /** the stored access policy and its engine; undefined: not read yet; null: no policy (allow all) */
  private policy: { policy: Policy; engine: PolicyEngine | null } | null | undefined = undefined;
  private constructor(
    /** the store itself: re-reads go here, not through `store` (whose writes would re-read again) */
    private readonly raw: ControlStore,
    private readonly opts: RegistryOptions,
    net: StoredNetwork,
  ) {
    this.now = opts.now ?? Date.now;
    this.net = net;
    this.store = cachedStore(raw, (t) => this.refresh(t));
  }

  /** The registry over `store`, with the network read once (and the IPv6 prefix drawn on a new network). */
  static async open(store: ControlStore, opts: RegistryOptions): Promise<Registry> {
    return new Registry(store, opts, await Registry.read(store));
  }

  private static async read(store: ControlStore): Promise<StoredNetwork> {
    const prefix = await ipv6Prefix(store);
    const [nodes, devices, approvals, dns, policyText] = await Promise.all([
      store.listNodes(),
      store.listDevices(),
      store.listRouteApprovals(),
      loadDns(store, prefix),
      store.getMeta('acl_policy'),
    ]);
    return { nodes, devices, approvals, dns, policyText, ipv6Prefix: prefix };
  }

  /**
   * Reads again what `touched` names (default: the whole network, e.g. after
   * a change another control server made in a shared database); resolves once
   * the copy holds it.
   */
  refresh(touched: Touched = everythingTouched()): Promise<void> {
    const next = this.reading.then(() => this.reread(touched));
    // a failed read leaves the copy as it was; the next write reads again
    this.reading = next.catch(() => {});
    return next;
  }

  private async reread(t: Touched): Promise<void> {
    if (t.nodes === 'all' && t.devices && t.approvals && t.dns && t.meta) {
      const net = await Registry.read(this.raw);
      if (net.policyText !== this.net.policyText) this.policy = undefined;
      this.net = net;
      return;
    }
    const net = { ...this.net };
    if (t.nodes === 'all') net.nodes = await this.raw.listNodes();
    else if (t.nodes.size > 0) {
      // the touched records replace theirs in the id-ordered list; every other record stays the same object (network-view.ts)
      const nodes = net.nodes.slice();
      for (const id of t.nodes) {
        const n = await this.raw.getNode(id);
        const i = indexById(nodes, id);
        if (nodes[i]?.id === id) {
          if (n) nodes[i] = n;
          else nodes.splice(i, 1);
        } else if (n) nodes.splice(i, 0, n);
      }
      net.nodes = nodes;
    }
    if (t.devices) net.devices = await this.raw.listDevices();
    if (t.approvals) net.approvals = await this.raw.listRouteApprovals();
    if (t.meta) {
      net.ipv6Prefix = await ipv6Prefix(this.raw);
      net.policyText = await this.raw.getMeta('acl_policy');
      if (net.policyText !== this.net.policyText) this.policy = undefined;
    }
    if (t.dns || t.meta) net.dns = await loadDns(this.raw, net.ipv6Prefix);
    this.net = net;
  }

  /** The nodes as last read, ordered by id (callers must not change them). */
  nodes(): readonly NodeRecord[] {
    return this.net.nodes;
  }
  /** The devices as last read, ordered by id. */
  devices(): readonly DeviceRecord[] {
    return this.net.devices;
  }
  /** The route approvals as last read, ordered by node id and prefix. */
  approvals(): readonly RouteApprovalRecord[] {
    return this.net.approvals;
  }
  /** The network's ULA /48. */
  get ipv6Prefix(): string {
    return this.net.ipv6Prefix;
  }
  /** The name service as stored (before node names shadow records). */
  storedDns(): DnsConfig {
    return this.net.dns;
  }

  /** The policy in force, or null (allow all). A stored policy that no longer parses denies everything rather than allowing it. */
  currentPolicy(): Policy | null {
    if (this.policy === undefined) {
      const text = this.net.policyText;
      let policy: Policy | null = null;
      if (text !== null) {
        try {
          policy = parsePolicy(text);
        } catch {
          policy = parsePolicy('{}');
        }
      }
      this.policy = policy ? { policy, engine: null } : null;
    }
    return this.policy?.policy ?? null;
  }

  /**
   * The policy engine brought up to date with `nodes` (only what changed is
   * recomputed) and the nodes whose filter or peers it recomputed; null without a policy.
   */
  private policyEngine(nodes: () => PolicyNode[]): { engine: PolicyEngine; touched: ReadonlySet<number> } | null {
    const policy = this.currentPolicy();
    if (!policy || !this.policy) return null;
    if (!this.policy.engine) {
      // a new engine computes every node: the change tracker treats a new engine as a change to every map
      this.policy.engine = new PolicyEngine(policy, [IPV4_PREFIX, this.net.ipv6Prefix], nodes());
      return { engine: this.policy.engine, touched: new Set() };
    }
    return { engine: this.policy.engine, touched: this.policy.engine.sync(nodes()) };
  }

  isExpired(n: NodeRecord): boolean {
    return n.keyExpiresAtMs !== null && n.keyExpiresAtMs <= this.now();
  }

  /** A free hostname, read inside the registration's transaction (two joins with one name get two names). */
  private async uniqueHostname(tx: StoreTx, wanted: string, selfId: number | null): Promise<string> {
    // devices share the namespace: a node never takes a device's name. Every candidate below begins with the wanted
    // name cut to leave room for "-" and up to HOSTNAME_SUFFIX_DIGITS digits, so one query of that prefix finds every
    // name in the way, not every node.
    const taken = new Set(await tx.namesStartingWith(wanted.slice(0, MAX_HOSTNAME - HOSTNAME_SUFFIX_DIGITS - 1), selfId));
    if (!taken.has(wanted)) return wanted;
    for (let i = 1; ; i++) {
      const c = `${wanted.slice(0, MAX_HOSTNAME - String(i).length - 1)}-${i}`;
      if (!taken.has(c)) return c;
    }
  }

  /**
   * Registers (or re-registers) a node from a request validated by validate.ts.
   * `accept` is called inside the transaction once the request is known to
   * change something (before the node is written); when it throws, nothing is
   * kept — not even the use of a single-use auth key.
   */
  async register(nodeKey: string, b: RegisterIn, accept: (tx: StoreTx) => Promise<void> = async () => {}): Promise<NodeRecord> {
    const requested = sanitizeHostname(b.hostname);
    const common = {
      discoKey: b.discoKey,
      os: b.os,
      version: b.version,
      endpoints: b.endpoints,
      lastSeenMs: this.now(),
      ...(b.advertised ? { advertisedRoutes: b.advertised.routes, advertisedExit: b.advertised.exitNode } : {}),
    };
    return this.store.transaction(async (tx) => {
      const existing = await tx.getNodeByKey(nodeKey);
      if (existing && !b.authKey) {
        if (this.isExpired(existing)) throw new ControlError('NODE_EXPIRED', 'node key expired: run `meshctl up --auth-key KEY` to re-authenticate');
        await accept(tx);
        const hostname = requested === existing.requestedHostname ? existing.hostname : await this.uniqueHostname(tx, requested, existing.id);
        await tx.updateNode(existing.id, { ...common, hostname, requestedHostname: requested });
        return (await tx.getNode(existing.id))!;
      }
      if (!b.authKey) throw new ControlError('AUTHKEY_REQUIRED', 'this node is not registered: pass --auth-key KEY (from `meshctl control authkey create`)');
      const key = await redeemAuthKey(tx, b.authKey, this.now());
      await accept(tx);
      const keyExpiresAtMs = this.opts.keyExpiryMs === null ? null : this.now() + this.opts.keyExpiryMs;
      if (existing) {
        // re-authentication of a known node: same addresses, fresh expiry
        const hostname = requested === existing.requestedHostname ? existing.hostname : await this.uniqueHostname(tx, requested, existing.id);
        await tx.updateNode(existing.id, { ...common, hostname, requestedHostname: requested, keyExpiresAtMs, authKeyId: key.id });
        return (await tx.getNode(existing.id))!;
      }
      const { ipv4, ipv6 } = await allocateAddresses(tx);
      return tx.insertNode({
        ...common,
        nodeKey,
        hostname: await this.uniqueHostname(tx, requested, null),
        requestedHostname: requested,
        ipv4,
        ipv6,
        homeRelay: null,
        ephemeral: key.ephemeral,
        authKeyId: key.id,
        // the key's owner or tags; a re-registration (above) keeps what the node has
        user: key.user,
        tags: key.tags,
        pending: this.opts.requireApproval === true,
        createdAtMs: this.now(),
        keyExpiresAtMs,
        connected: false,
      });
    });
  }

  /** A node by id, hostname, IPv4/IPv6 address or node key. */
  find(ref: string): NodeRecord | null {
    return this.net.nodes.find((n) => String(n.id) === ref || n.hostname === ref || n.ipv4 === ref || n.ipv6 === ref || n.nodeKey === ref) ?? null;
  }

  /** The primary router of each active prefix (routes.ts: stays while online, no move back). */
  primaries(isOnline: (id: number) => boolean): Map<string, number> {
    const nodes = this.net.nodes.filter((n) => !this.isExpired(n) && !n.pending);
    return this.election.elect(activeRoutes(this.net.approvals, nodes), isOnline);
  }

  /**
   * A node as others (or it itself, `self`) see it. With `routes`, its active
   * routes and exit flag are shown, its primary routes and `extraAllowed`
   * (its devices' addresses) join its allowedIps.
   */
  view(n: NodeRecord, online: boolean, routes?: { active: ActiveRoutes; primaries: Map<string, number>; extraAllowed?: string[]; self?: boolean }): NodeView {
    const v: NodeView = {
      id: n.id,
      name: n.hostname,
      nodeKey: n.nodeKey,
      discoKey: n.discoKey,
      addresses: [n.ipv4, n.ipv6],
      allowedIps: [`${n.ipv4}/32`, `${n.ipv6}/128`],
      endpoints: n.endpoints,
      homeRelay: n.homeRelay,
      online,
      lastSeen: n.lastSeenMs === null ? null : isoTime(n.lastSeenMs),
      os: n.os,
      version: n.version,
      keyExpiry: n.keyExpiresAtMs === null ? null : isoTime(n.keyExpiresAtMs),
      ephemeral: n.ephemeral,
    };
    if (n.user !== null) v.user = n.user;
    if (n.tags.length > 0) v.tags = [...n.tags];
    if (routes) {
      const primary = routes.active.routes.filter((p) => routes.primaries.get(p) === n.id);
      v.routes = routes.active.routes;
      v.primaryRoutes = primary;
      v.exitNode = routes.active.exitNode;
      v.allowedIps.push(...primary, ...(routes.extraAllowed ?? []));
      if (routes.self) v.advertised = { routes: n.advertisedRoutes, exitNode: n.advertisedExit };
    }
    return v;
  }

  /** The registration's answer: the node's own view, with what control holds as its advertisement. */
  registerResult(n: NodeRecord, online: boolean): RegisterResult {
    const node: NodeView = { ...this.view(n, online), advertised: { routes: n.advertisedRoutes, exitNode: n.advertisedExit } };
    return { node, ipv4Prefix: IPV4_PREFIX, ipv6Prefix: this.net.ipv6Prefix };
  }

  /**
   * What `self` may see: every other node of the network whose key is valid.
   * Expired and deleted nodes are left out, so peers stop talking to them;
   * nodes waiting for approval are left out until approved.
   * Without an access policy every valid node sees every other; with one, a
   * node sees only the peers it may reach or that may reach it, and its map
   * carries the packet-filter rules for what may reach it.
   */
  mapFor(self: NodeRecord, isOnline: (id: number) => boolean, relays: RelayRegion[]): NetworkMap {
    return this.snapshot(isOnline, relays, self).mapFor(self);
  }

  /**
   * One read of the network for every map of a broadcast (snapshot.ts); the
   * change tracker compares it with the last one. `include` is a node shown
   * although it is not valid (its own map, while it is expired or pending).
   */
  snapshot(isOnline: (id: number) => boolean, relays: RelayRegion[], include?: NodeRecord): NetworkSnapshot {
    const all = this.net.nodes;
    const isValid = (n: NodeRecord): boolean => !this.isExpired(n) && !n.pending;
    const valid = all.filter((n) => n.id === include?.id || isValid(n));
    const active = activeRoutes(this.net.approvals, valid);
    const primaries = this.election.elect(active, isOnline);
    const validIds = new Set(valid.map((n) => n.id));
    // devices behind a gateway in this map; each one's addresses join its gateway's allowedIps
    const devices = this.net.devices.filter((d) => validIds.has(d.gatewayId));
    const deviceAddresses = new Map<number, string[]>();
    for (const d of devices) deviceAddresses.set(d.gatewayId, [...(deviceAddresses.get(d.gatewayId) ?? []), d.ipv4, d.ipv6]);
    const policy = this.policyEngine(() =>
      valid.filter(isValid).map((n) => {
        const a = active.get(n.id)!;
        const devs = deviceAddresses.get(n.id);
        const sig = a.routes.length === 0 && !a.exitNode && !devs ? '' : JSON.stringify([a.routes, a.exitNode, devs]);
        return this.netView.policyNode(n, sig, () => ({
          id: n.id,
          ...nodeOwner(n),
          addresses: [n.ipv4, n.ipv6],
          routes: a.routes,
          exitNode: a.exitNode,
          deviceAddresses: devs ?? [],
        }));
      }),
    );
    const stored = this.net.dns;
    // node names only shadow records: without records the name list is not built
    const names = stored.records.length ? [...all.map((n) => n.hostname), ...devices.map((d) => d.name)] : [];
    this.netView.begin();
    const snap = new NetworkSnapshot({
      valid,
      active,
      primaries,
      devices,
      dns: dnsForMap(stored, names),
      engine: policy?.engine ?? null,
      ipv4Prefix: IPV4_PREFIX,
      ipv6Prefix: this.net.ipv6Prefix,
      relays,
      isOnline,
      view: (n, online, routes) => this.view(n, online, routes),
      // a snapshot that shows an invalid node (its own map) builds its pieces apart
      cache: include === undefined || isValid(include) ? this.netView : undefined,
    });
    // a snapshot that shows an invalid node is not the network every stream sees: only its policy part is recorded
    snap.seq = this.changes.observe(snap, policy?.touched ?? new Set(), include === undefined || isValid(include));
    return snap;
  }
}
