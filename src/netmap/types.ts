// What the control server tells a node about the network: each node's view,
// the relay regions, the map stream's lines and the answer to a registration.
// Control builds these and nodes parse them (parse.ts); the daemon, its state
// store and the engine host hold them. This module imports nothing of ours, so
// both sides can share it without depending on each other.

/**
 * Endpoints one node reports, and so one peer's path candidates in every
 * other node's map: each is probed by every peer, so a longer list costs the
 * whole network. The node keeps its STUN- and port-mapped ones first and cuts
 * the list here; control refuses a longer one and nodes refuse a map with one.
 */
export const MAX_NODE_ENDPOINTS = 32;
/** A node's OS string (`process.platform` values are short) and version string, as control stores and maps carry them. */
export const MAX_NODE_OS_CHARS = 32;
export const MAX_NODE_VERSION_CHARS = 64;

/** What one node may know of another (and of itself). */
export interface NodeView {
  id: number;
  name: string;
  nodeKey: string;
  discoKey: string;
  addresses: string[];
  allowedIps: string[];
  endpoints: string[];
  homeRelay: string | null;
  online: boolean;
  lastSeen: string | null;
  os: string;
  version: string;
  keyExpiry: string | null;
  ephemeral: boolean;
  /** subnet routes control approved for this node (canonical prefixes); absent = none */
  routes?: string[];
  /** of `routes`, those this node is the primary router for: only these are in its allowedIps */
  primaryRoutes?: string[];
  /** approved as an exit node: a client that chooses it routes 0.0.0.0/0 and ::/0 through it */
  exitNode?: boolean;
  /** the self view only: what this node advertises (routes and exit), approved or not */
  advertised?: { routes: string[]; exitNode: boolean };
  /** the user that owns the node (absent for a tagged node) */
  user?: string;
  /** the node's tags, e.g. `tag:server` (a tagged node has no owner) */
  tags?: string[];
}

/**
 * A device without meshctl (a phone on the stock WireGuard app) that reaches
 * the mesh through a gateway node. Every node sees its name and addresses (the
 * gateway's allowedIps carry them); only the gateway's map holds its public key.
 */
export interface DeviceView {
  id: number;
  name: string;
  addresses: string[];
  /** the gateway node's name */
  gateway: string;
  /** present in the gateway's own map only */
  publicKey?: string;
}

export interface NetworkMap {
  self: NodeView;
  peers: NodeView[];
  ipv4Prefix: string;
  ipv6Prefix: string;
  /** relay regions; empty when the control server names none */
  relays: RelayRegion[];
  /** the network's name service; absent when the control server sends none (then the node leaves DNS alone) */
  dns?: DnsConfig;
  /** devices on stock WireGuard behind gateway nodes; absent = none */
  devices?: DeviceView[];
  /**
   * The access policy's rules that concern this node: what may reach it (and
   * what it forwards to, as a router or gateway). Absent = no policy: allow all.
   * Present and empty = nothing may open a connection to it.
   */
  packetFilter?: FilterRule[];
}

/**
 * One accept rule, as Tailscale's FilterRule: packets from any of `srcIps`
 * to any of `dstPorts`, with one of `protocols`. Everything not accepted by a
 * rule is dropped, except replies to flows the node opened itself.
 */
export interface FilterRule {
  /** canonical prefixes (an address is its /32 or /128); `*` is not used: 0.0.0.0/0 and ::/0 are */
  srcIps: string[];
  dstPorts: FilterDestination[];
  /** IANA protocol numbers; empty = TCP (6), UDP (17), ICMP (1) and ICMPv6 (58) */
  protocols: number[];
}

export interface FilterDestination {
  /** a canonical prefix */
  ip: string;
  /** inclusive port range; 0–65535 = any (and for protocols without ports) */
  first: number;
  last: number;
}

/**
 * The name service every node runs (MagicDNS): each node is `NAME.suffix`, the
 * node's resolver listens on `resolvers` (addresses control keeps out of its
 * allocator), split-DNS routes send a domain to its own resolvers, and extra
 * records add names that are not nodes.
 */
export interface DnsConfig {
  /** lowercase, no leading or trailing dot, e.g. `mesh.internal` */
  suffix: string;
  /** the fixed addresses of every node's own resolver: one IPv4, one IPv6 */
  resolvers: string[];
  routes: DnsRoute[];
  records: DnsRecord[];
}

/** Split DNS: names at or under `domain` are forwarded to these resolvers (IP or IP:port / [IPv6]:port). */
export interface DnsRoute {
  domain: string;
  resolvers: string[];
}

/** An extra record served by every node's resolver. */
export interface DnsRecord {
  /** a full name, lowercase, no trailing dot */
  name: string;
  type: 'A' | 'AAAA';
  value: string;
}

export interface RelayRegion {
  code: string;
  /** https://HOST:PORT; HOST may be an IPv6 literal in brackets */
  url: string;
  stunPort: number;
  certFingerprint?: string;
  /**
   * The relay's IPv6 address (canonical) when the URL names it by IPv4 or by name: nodes try it when
   * the URL's host fails or they have no IPv4, and send STUN there too to learn their IPv6 endpoint.
   */
  ipv6?: string;
}

/**
 * One line of the map stream: a whole map, a delta against the last map or
 * delta, a keepalive, or the node is gone from control. `seq` numbers the
 * network's state a map or delta brings the node to (increasing, with gaps:
 * a stream gets only the states that changed its map); a delta applies only on
 * top of the state numbered `base`.
 */
export type MapLine =
  | { type: 'map'; map: NetworkMap; seq?: number }
  | { type: 'delta'; delta: MapDelta }
  | { type: 'keepalive' }
  | { type: 'gone'; reason: 'NODE_UNKNOWN' | 'NODE_EXPIRED' };

/** The fields of a peer a patch may set: every field of NodeView except its id and the self-only `advertised`. */
export type PatchableField = Exclude<keyof NodeView, 'id' | 'advertised'>;
/** Of those, the optional ones, which a patch may also remove. */
export type OptionalPeerField = 'routes' | 'primaryRoutes' | 'exitNode' | 'user' | 'tags';

/** What changed of one peer the node already holds: `set` replaces those fields, `unset` removes optional ones. */
export interface PeerPatch {
  id: number;
  set: Partial<Pick<NodeView, PatchableField>>;
  unset?: OptionalPeerField[];
}

/**
 * What changed in a node's map between state `base` and state `seq`. Peers
 * come whole when new to the node (or changed too much for a patch), as a
 * patch when only some fields changed, or by id when the node no longer sees
 * them. The other parts come whole when they changed: `dns` null and
 * `packetFilter` null remove them, `devices` empty means none.
 */
export interface MapDelta {
  seq: number;
  base: number;
  self?: NodeView;
  peers?: NodeView[];
  patches?: PeerPatch[];
  removed?: number[];
  relays?: RelayRegion[];
  dns?: DnsConfig | null;
  devices?: DeviceView[];
  packetFilter?: FilterRule[] | null;
  /** the packet filter's change, against the filter the node holds (only to a node that asked for filter patches) */
  filterPatch?: FilterPatch;
}

/**
 * One rule's change in a filter patch: the whole rule at position `i`, or the
 * sources removed from the rule held there and those added, each at its
 * position in the resulting list (ascending).
 */
export interface FilterRuleEdit {
  i: number;
  rule?: FilterRule;
  remove?: string[];
  add?: [number, string][];
}

/** A packet filter's change: the number of rules it now has, and the rules that changed, by ascending position. */
export interface FilterPatch {
  rules: number;
  edits: FilterRuleEdit[];
}

/** The answer to a registration: the node as control now holds it, and the network's prefixes. */
export interface RegisterResult {
  node: NodeView;
  /** the network's IPv6 ULA prefix, routed to the mesh interface */
  ipv6Prefix: string;
  ipv4Prefix: string;
}

/**
 * Subnet routes one node may advertise (and control may approve for it). Each
 * approved route is a kernel route on every client that accepts routes and an
 * AllowedIPs entry of the router in every peer's map: 64 covers a router for
 * many VLANs and keeps the per-peer cryptokey table and route churn small.
 */
export const MAX_NODE_ROUTES = 64;
/**
 * Devices on stock WireGuard in one network. Each is a peer of its gateway and
 * two AllowedIPs entries of the gateway in every map: a household or a small
 * office has a few dozen phones and laptops; 256 leaves room, and bounds a map.
 */
export const MAX_NETWORK_DEVICES = 256;
/**
 * The mesh interface's MTU: 1280, the IPv6 minimum, fits inside WireGuard's
 * overhead on any path down to a 1360-byte link MTU; devices on stock
 * WireGuard get the same value in their config.
 */
export const MESH_MTU = 1280;

/** How many of a node's peers it reaches directly (UDP) and how many through a relay: sent with its endpoint updates. */
export interface PathCounts {
  direct: number;
  relay: number;
}
