// The local API between the CLI and the daemon: HTTP on a unix socket. These
// types are the documented, stable shape of `meshctl status --json` and of
// every other answer (man/meshctl.1, docs/architecture.md). They import only
// types (erased at build), so the CLI loads nothing else of ours through them.
import type { NetReport } from '../netmap/netreport.js';

export const LOCALAPI = {
  status: '/localapi/v1/status',
  up: '/localapi/v1/up',
  down: '/localapi/v1/down',
  logout: '/localapi/v1/logout',
  ping: '/localapi/v1/ping',
  whois: '/localapi/v1/whois',
  prefs: '/localapi/v1/prefs',
  netcheck: '/localapi/v1/netcheck',
  dnsStatus: '/localapi/v1/dns/status',
  dnsQuery: '/localapi/v1/dns/query',
  metrics: '/localapi/v1/metrics',
} as const;

/**
 * `GET status?format=pretty` answers JSON.stringify(status, null, 2) and says so in this header; `status --json` prints
 * such a body as it is, and parses and writes any other (a daemon of another version) itself.
 */
export const STATUS_FORMAT_HEADER = 'x-meshctl-status-format';

/** `meshctl metrics`: the daemon's Prometheus text exposition (docs/metrics.md), as its --metrics-listen endpoint serves it. */
export interface MetricsResponse {
  contentType: string;
  text: string;
}

export const DEFAULT_SOCKET = '/var/run/meshctl/meshctld.sock';
export const DEFAULT_STATE_DIR = '/var/lib/meshctl';
export const DEFAULT_IFNAME = 'meshctl0';
export const DEFAULT_PORT = 41641;

export type BackendState = 'NoState' | 'NeedsLogin' | 'Starting' | 'Running' | 'Stopped';

export type PathStatus =
  | { kind: 'direct'; endpoint: string; latencyMs: number | null; trusted: boolean }
  | { kind: 'relay'; region: string }
  | { kind: 'none' };

export interface PeerStatus {
  name: string;
  /** the full name the mesh's resolver answers for (`NAME.suffix`); null when control sends no DNS config */
  dnsName: string | null;
  ips: string[];
  nodeKey: string;
  os: string;
  online: boolean;
  lastSeen: string | null;
  /** a packet went either way within the last 45 s */
  active: boolean;
  /** the path that carries this peer's packets now */
  path: PathStatus;
  lastHandshake: string | null;
  txBytes: number;
  rxBytes: number;
  endpoints: string[];
  /** the peer's approved subnet routes and whether this node uses them; absent when it has none */
  routes?: PeerRouteStatus[];
  /** the peer is an approved exit node; absent when not */
  exitNode?: boolean;
  /** the user that owns the peer (from control); absent for a tagged node or one with no owner */
  user?: string;
  /** the peer's tags (from control); absent when it has none */
  tags?: string[];
}

export interface SelfStatus {
  name: string;
  /** the full name the mesh's resolver answers for (`NAME.suffix`); null when control sends no DNS config */
  dnsName: string | null;
  ips: string[];
  nodeKey: string;
  os: string;
  ifname: string;
  listenPort: number;
  endpoints: string[];
  /** subnet routing on this node */
  routes?: RoutesStatus;
  /** this node offers itself as exit node, and control approved it */
  advertiseExitNode?: boolean;
  exitNodeApproved?: boolean;
  /** this node's owner and tags as control holds them; absent when none */
  user?: string;
  tags?: string[];
}

/** A device on stock WireGuard (a phone's WireGuard app) that reaches the mesh through a gateway node. */
export interface DeviceStatus {
  name: string;
  ips: string[];
  /** the gateway node's name */
  gateway: string;
  /** this node is its gateway: the fields below are its WireGuard peer's (else null and 0) */
  viaSelf: boolean;
  /** where its packets come from now (it roams), null before its first handshake */
  endpoint: string | null;
  lastHandshake: string | null;
  txBytes: number;
  rxBytes: number;
}

/** One relay connection of the daemon's, as status and netcheck show it. */
export interface RelayConnection {
  region: string;
  url: string;
  connected: boolean;
  /** the relay address the connection went to (`[v6]:port` for IPv6); absent from older daemons */
  address?: string | null;
  latencyMs: number | null;
  lastError: string | null;
}

export interface Status {
  version: string;
  backendState: BackendState;
  self: SelfStatus | null;
  control: { url: string | null; connected: boolean; lastError: string | null };
  /** the exit node this node sends internet traffic through; null when none */
  exitNode?: ExitNodeStatus | null;
  peers: PeerStatus[];
  /** devices on stock WireGuard in the network, each with its gateway (absent from an older daemon: none) */
  devices?: DeviceStatus[];
  health: string[];
  /** the relay region where peers can always reach this node, and the relay connections */
  homeRegion: string | null;
  relays: RelayConnection[];
  /**
   * counters of the data plane: packets, drops by reason, TUN offloads and readers, disco, path use; the daemon's memory;
   * `acl`: the access filter's drops by reason (droppedNoRule, droppedNotAReply, droppedFragment, droppedMalformed) and
   * flow table use, null with no policy
   */
  counters: Record<string, unknown> | null;
}

export interface UpRequest {
  loginServer?: string;
  /** every control URL of the network (replicas), `loginServer` first: the daemon fails over between them */
  loginServers?: string[];
  authKey?: string;
  hostname?: string;
  controlCaPem?: string;
  /** trust the control server by the SHA-256 of its certificate's public key (`sha256//BASE64`) instead of by a CA */
  controlPin?: string;
  ifname?: string;
  port?: number;
  timeoutMs?: number;
  /** point the OS resolver at the mesh's name service; remembered (default true) */
  acceptDns?: boolean;
  /** subnet routes to advertise (canonical prefixes; [] withdraws all); remembered */
  advertiseRoutes?: string[];
  /** install peers' approved routes; remembered (default false) */
  acceptRoutes?: boolean;
  /** masquerade forwarded subnet traffic; remembered (default true) */
  snatSubnetRoutes?: boolean;
  /** offer this node as an exit node; remembered (default false) */
  advertiseExitNode?: boolean;
  /** send all internet traffic through this peer (name or mesh IP; '' turns it off); remembered */
  exitNode?: string;
  /** with an exit node, keep the host's LAN reachable directly; remembered (default false) */
  exitNodeAllowLanAccess?: boolean;
}

/** `up` answers with a stream of these lines, ending in `done` or `error`. */
export type UpLine = { type: 'progress'; message: string } | { type: 'done'; status: Status } | { type: 'error'; error: ApiErrorBody['error'] };

export interface PingRequest {
  peer: string;
  timeoutMs?: number;
}

export interface PingResponse {
  name: string;
  ip: string;
  pong: { via: 'direct'; endpoint: string; latencyMs: number } | { via: 'relay'; region: string; latencyMs: number } | null;
}

export interface WhoisResponse {
  name: string;
  ips: string[];
  nodeKey: string;
  os: string;
  self: boolean;
  /** the node's owner and tags as control holds them; absent when none */
  user?: string;
  tags?: string[];
}

/** The daemon's last network report (src/netmap/netreport.ts), its home region and its relay connections. */
export interface NetcheckResponse extends NetReport {
  homeRegion: string | null;
  relays: RelayConnection[];
}

/** `meshctl dns status`: what the daemon's resolver does and what it did to the OS resolver. */
export interface DnsStatus {
  /** the control server sends a DNS config (else the daemon leaves DNS alone) */
  enabled: boolean;
  /** the node's setting: point the OS resolver at the mesh's names */
  acceptDns: boolean;
  suffix: string | null;
  /** the resolver's fixed addresses, as control sent them */
  resolvers: string[];
  /** the addresses the resolver listens on now (UDP and TCP port 53 each), as HOST:PORT / [HOST]:PORT */
  listening: string[];
  /** how the OS resolver is configured: 'direct' (resolv.conf), 'resolved' (systemd-resolved), or 'off' */
  mode: string;
  /** why that mode: what was read, or the setting that keeps the OS alone */
  why: string;
  /** what was written to the OS, one line each (nothing when off) */
  written: string[];
  /** where names outside the mesh go: the host's resolvers from before meshctl */
  upstreams: string[];
  /** split DNS: a domain and the resolvers that answer for it */
  routes: { domain: string; resolvers: string[] }[];
  /** extra records from control */
  records: number;
  /** the resolver's counters: queries, answers, NXDOMAIN, forwarded, SERVFAIL, refused, dropped... */
  counters: Record<string, number> | null;
  /** what went wrong setting DNS up, one line each (also in status' health) */
  errors: string[];
}

export interface DnsQueryRequest {
  name: string;
  /** A, AAAA, PTR, ... (default A) */
  type?: string;
}

/** One answer of `meshctl dns query`, with the response code the resolver gave. */
export interface DnsQueryResponse {
  /** the resolver asked, HOST:PORT */
  server: string;
  name: string;
  type: string;
  /** NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ... */
  rcode: string;
  answers: { name: string; type: string; ttl: number; data: string }[];
  /** UDP, or TCP after a truncated answer */
  transport: 'udp' | 'tcp';
  /** round trip in milliseconds */
  ms: number;
}

/** The exit-node settings, as `up` and `set` take them. */
export type ExitNodeSettings = Pick<UpRequest, 'advertiseExitNode' | 'exitNode' | 'exitNodeAllowLanAccess'>;

export interface PrefsRequest extends ExitNodeSettings {
  operator?: string | null;
  hostname?: string;
  acceptDns?: boolean;
  advertiseRoutes?: string[];
  acceptRoutes?: boolean;
  snatSubnetRoutes?: boolean;
}

/** The exit node this node uses, as status shows it. */
export interface ExitNodeStatus {
  /** the setting (name or mesh IP) and the peer it names */
  selector: string;
  name: string | null;
  /** 'active': internet traffic goes through it; otherwise that traffic is blocked (fail closed) */
  state: 'active' | 'offline' | 'gone' | 'unapproved';
  allowLanAccess: boolean;
}

/** One route of a peer as this node sees it (status --json). */
export interface PeerRouteStatus {
  prefix: string;
  /** the peer is the primary router for it (only then does it carry the prefix) */
  primary: boolean;
  /** in this node's table 52 now */
  installed: boolean;
  /** why not installed; null when installed */
  why: string | null;
}

/** This node's routing, as status shows it. */
export interface RoutesStatus {
  /** what this node advertises (its setting) and what control approved / made it primary for */
  advertised: string[];
  approved: string[];
  primary: string[];
  acceptRoutes: boolean;
  snatSubnetRoutes: boolean;
  /** IPv4 / IPv6 forwarding as read from /proc; null when not read (nothing advertised) */
  forwarding: { ipv4: boolean | null; ipv6: boolean | null };
  /** packets from peers dropped because their destination is not served here */
  droppedDestination: number;
}

export type ApiErrorCode = 'BAD_REQUEST' | 'PERMISSION' | 'NOT_FOUND' | 'UNREACHABLE' | 'AUTH' | 'TIMEOUT' | 'NOT_RUNNING' | 'FAILURE';

export interface ApiErrorBody {
  error: { code: ApiErrorCode; message: string };
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
  }
}
