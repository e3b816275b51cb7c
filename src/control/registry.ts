// The network's membership rules on top of the store: registration (auth key
// or an already-known node key), hostnames kept unique, key expiry, and the
// view of the network each node is allowed to see.
import { allocateAddresses, IPV4_PREFIX, ipv6Prefix } from './addresses.js';
import { redeemAuthKey } from './authkeys.js';
import { dnsForMap, loadDns } from './dns.js';
import { ControlError } from './protocol.js';
import type { DnsConfig, NetworkMap, NodeView, RegisterResult, RelayRegion } from '../netmap/types.js';
import type { ControlStore, NodeRecord } from './store.js';
import type { RegisterIn } from './validate.js';
import { isoTime } from '../util/time.js';

/** One DNS label. */
const MAX_HOSTNAME = 63;

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
  now?: () => number;
}

export class Registry {
  private readonly now: () => number;
  /** the stored name service, read once per change rather than once per map (a map is built per stream per change) */
  private dns: DnsConfig | null = null;
  constructor(
    readonly store: ControlStore,
    private readonly opts: RegistryOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** The DNS routes, records or suffix in the store changed: the next map reads them again. */
  dnsChanged(): void {
    this.dns = null;
  }

  isExpired(n: NodeRecord): boolean {
    return n.keyExpiresAtMs !== null && n.keyExpiresAtMs <= this.now();
  }

  private uniqueHostname(wanted: string, selfId: number | null): string {
    const taken = new Set(
      this.store
        .listNodes()
        .filter((n) => n.id !== selfId)
        .map((n) => n.hostname),
    );
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
  register(nodeKey: string, b: RegisterIn, accept: () => void = () => {}): NodeRecord {
    const requested = sanitizeHostname(b.hostname);
    const common = { discoKey: b.discoKey, os: b.os, version: b.version, endpoints: b.endpoints, lastSeenMs: this.now() };
    return this.store.transaction(() => {
      const existing = this.store.getNodeByKey(nodeKey);
      if (existing && !b.authKey) {
        if (this.isExpired(existing)) throw new ControlError('NODE_EXPIRED', 'node key expired: run `meshctl up --auth-key KEY` to re-authenticate');
        accept();
        const hostname = requested === existing.requestedHostname ? existing.hostname : this.uniqueHostname(requested, existing.id);
        this.store.updateNode(existing.id, { ...common, hostname, requestedHostname: requested });
        return this.store.getNode(existing.id)!;
      }
      if (!b.authKey) throw new ControlError('AUTHKEY_REQUIRED', 'this node is not registered: pass --auth-key KEY (from `meshctl control authkey create`)');
      const key = redeemAuthKey(this.store, b.authKey, this.now());
      accept();
      const keyExpiresAtMs = this.opts.keyExpiryMs === null ? null : this.now() + this.opts.keyExpiryMs;
      if (existing) {
        // re-authentication of a known node: same addresses, fresh expiry
        const hostname = requested === existing.requestedHostname ? existing.hostname : this.uniqueHostname(requested, existing.id);
        this.store.updateNode(existing.id, { ...common, hostname, requestedHostname: requested, keyExpiresAtMs, authKeyId: key.id });
        return this.store.getNode(existing.id)!;
      }
      const { ipv4, ipv6 } = allocateAddresses(this.store);
      return this.store.insertNode({
        ...common,
        nodeKey,
        hostname: this.uniqueHostname(requested, null),
        requestedHostname: requested,
        ipv4,
        ipv6,
        homeRelay: null,
        ephemeral: key.ephemeral,
        authKeyId: key.id,
        createdAtMs: this.now(),
        keyExpiresAtMs,
        connected: false,
      });
    });
  }

  /** A node by id, hostname, IPv4/IPv6 address or node key. */
  find(ref: string): NodeRecord | null {
    return this.store.listNodes().find((n) => String(n.id) === ref || n.hostname === ref || n.ipv4 === ref || n.ipv6 === ref || n.nodeKey === ref) ?? null;
  }

  view(n: NodeRecord, online: boolean): NodeView {
    return {
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
  }

  registerResult(n: NodeRecord, online: boolean): RegisterResult {
    return { node: this.view(n, online), ipv4Prefix: IPV4_PREFIX, ipv6Prefix: ipv6Prefix(this.store) };
  }

  /**
   * What `self` may see: every other node of the network whose key is valid.
   * Expired and deleted nodes are left out, so peers stop talking to them.
   * (One network per server and no ACLs yet: every valid node sees every other.)
   */
  mapFor(self: NodeRecord, isOnline: (id: number) => boolean, relays: RelayRegion[]): NetworkMap {
    const all = this.store.listNodes();
    return {
      self: this.view(self, true),
      peers: all.filter((n) => n.id !== self.id && !this.isExpired(n)).map((n) => this.view(n, isOnline(n.id))),
      ipv4Prefix: IPV4_PREFIX,
      ipv6Prefix: ipv6Prefix(this.store),
      relays,
      dns: dnsForMap(
        (this.dns ??= loadDns(this.store)),
        all.map((n) => n.hostname),
      ),
    };
  }
}
