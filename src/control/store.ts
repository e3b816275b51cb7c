// The control server's persistent state behind one small interface: the
// embedded SQLite file (sqlite-store.ts, the default) or a PostgreSQL database
// shared by several control servers (pg-store.ts). Every method is asynchronous
// and atomic on its own; callers that need several steps together use
// `transaction` and make every call inside it through the handle it is given.

export interface AuthKeyRecord {
  id: string;
  /** SHA-256 of the secret part, hex; the secret itself is never stored */
  secretHash: string;
  reusable: boolean;
  ephemeral: boolean;
  createdAtMs: number;
  /** null: never expires */
  expiresAtMs: number | null;
  usedCount: number;
  /** the user that owns the nodes this key registers; null: none (tagged, or a key with neither) */
  user: string | null;
  /** the tags the nodes it registers carry (a key has a user or tags, never both) */
  tags: string[];
  /** revoked keys register nothing; the nodes they registered stay */
  revoked: boolean;
}

/** A new key; without them it has no owner, no tags and is not revoked. */
export type NewAuthKey = Omit<AuthKeyRecord, 'user' | 'tags' | 'revoked'> & Partial<Pick<AuthKeyRecord, 'user' | 'tags' | 'revoked'>>;

/** A user of the network: nodes and auth keys belong to one by name. */
export interface UserRecord {
  name: string;
  createdAtMs: number;
}

export interface NodeRecord {
  id: number;
  nodeKey: string;
  discoKey: string;
  hostname: string;
  /** the requested hostname before de-duplication, so a rename keeps intent */
  requestedHostname: string;
  os: string;
  version: string;
  ipv4: string;
  ipv6: string;
  endpoints: string[];
  homeRelay: string | null;
  ephemeral: boolean;
  authKeyId: string;
  createdAtMs: number;
  lastSeenMs: number | null;
  /** null: the node key never expires */
  keyExpiresAtMs: number | null;
  /** a map stream was open when last recorded; survives a server crash so peers are not torn down by a restart */
  connected: boolean;
  /** the subnet routes the node advertises (canonical prefixes); active only once approved */
  advertisedRoutes: string[];
  /** the node offers itself as an exit node; active only once approved */
  advertisedExit: boolean;
  /** the owner (from the auth key that registered it); null for a tagged node or one registered by a key with neither */
  user: string | null;
  /** the node's tags (from its auth key) */
  tags: string[];
  /** registered while approval was required and not approved yet: in no map */
  pending: boolean;
}

type NodeDefaults = 'advertisedRoutes' | 'advertisedExit' | 'user' | 'tags' | 'pending';
/** A new node; it advertises nothing until it says so, and has no owner, tags or pending approval unless given. */
export type NewNode = Omit<NodeRecord, 'id' | NodeDefaults> & Partial<Pick<NodeRecord, NodeDefaults>>;
export type NodeUpdate = Partial<Omit<NodeRecord, 'id' | 'createdAtMs'>>;

/** What remembering a request's nonce found: new (and now remembered), seen before, or a cap reached (not remembered). */
export type NonceVerdict = 'fresh' | 'replayed' | 'key-full' | 'full';

export interface NonceLimits {
  /** nonces kept at once, all node keys together */
  total: number;
  /** nonces kept at once for one node key */
  perNodeKey: number;
}

/** The replay cache of sealed requests; expired entries are pruned as new ones arrive. */
export interface NonceStore {
  /** Atomically: prune nonces expired at `nowMs`, then check `nonce` of `nodeKey` and remember it until `expiresAtMs`. */
  rememberNonce(nodeKey: string, nonce: string, expiresAtMs: number, nowMs: number, limits: NonceLimits): Promise<NonceVerdict>;
  /** Whether `nonce` of `nodeKey` is remembered and not yet expired at `nowMs` (a read: nothing is pruned or added). */
  hasNonce(nodeKey: string, nonce: string, nowMs: number): Promise<boolean>;
  /** how many nonces are remembered now (expired ones included until the next prune) */
  nonceCount(): Promise<number>;
}

/** A split-DNS route as stored: names at or under `domain` go to `resolvers` (canonical IP or IP:port text). */
export interface DnsRouteRecord {
  domain: string;
  resolvers: string[];
}

/** An extra DNS record as stored; (name, type, value) is unique. */
export interface DnsRecordRecord {
  name: string;
  type: 'A' | 'AAAA';
  value: string;
}

/** The name service's routes and records (the suffix is in meta, key `dns_suffix`). */
export interface DnsStore {
  /** routes ordered by domain */
  listDnsRoutes(): Promise<DnsRouteRecord[]>;
  /** adds the route, or replaces the resolvers of the domain's route; true when the domain was new */
  putDnsRoute(r: DnsRouteRecord): Promise<boolean>;
  deleteDnsRoute(domain: string): Promise<boolean>;
  /** records ordered by name, type, value */
  listDnsRecords(): Promise<DnsRecordRecord[]>;
  /** false when the same (name, type, value) is already there */
  insertDnsRecord(r: DnsRecordRecord): Promise<boolean>;
  /** deletes the name's records (only the one with `value` when given); how many went */
  deleteDnsRecords(name: string, value?: string): Promise<number>;
}

/** An admin's approval of one prefix for one node; an exit node is approved as 0.0.0.0/0 and ::/0. */
export interface RouteApprovalRecord {
  nodeId: number;
  /** canonical prefix */
  prefix: string;
}

/** A device on stock WireGuard: only its public key is kept (the private key was printed once). */
export interface DeviceRecord {
  id: number;
  name: string;
  publicKey: string;
  ipv4: string;
  ipv6: string;
  gatewayId: number;
  createdAtMs: number;
}

/** Route approvals and devices; both go with their node when it is deleted. */
export interface RouteStore {
  /** ordered by node id, then prefix */
  listRouteApprovals(): Promise<RouteApprovalRecord[]>;
  /** false when it was already approved */
  approveRoute(a: RouteApprovalRecord): Promise<boolean>;
  /** false when it was not approved */
  removeRouteApproval(a: RouteApprovalRecord): Promise<boolean>;
  /** ordered by id */
  listDevices(): Promise<DeviceRecord[]>;
  insertDevice(d: Omit<DeviceRecord, 'id'>): Promise<DeviceRecord>;
  deleteDevice(id: number): Promise<boolean>;
}

/** What a transaction's handle offers: every read and write, run inside the transaction. */
export interface StoreTx extends NonceStore, DnsStore, RouteStore {
  /**
   * Runs `fn` in one transaction: all its writes land, or none. Writers are
   * serialized (SQLite's BEGIN IMMEDIATE, an advisory lock in PostgreSQL), so
   * a read-then-write inside it (a single-use auth key, the next address)
   * cannot race another one. Every call inside goes through `tx`; on a
   * handle that is already in a transaction, `fn` joins it.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;

  insertAuthKey(k: NewAuthKey): Promise<void>;
  getAuthKey(id: string): Promise<AuthKeyRecord | null>;
  listAuthKeys(): Promise<AuthKeyRecord[]>;
  markAuthKeyUsed(id: string): Promise<void>;
  /** false when there is no such key */
  revokeAuthKey(id: string): Promise<boolean>;
  /** the user's keys go; how many */
  deleteAuthKeysOf(user: string): Promise<number>;

  /** ordered by name */
  listUsers(): Promise<UserRecord[]>;
  getUser(name: string): Promise<UserRecord | null>;
  /** false when the name is taken */
  insertUser(u: UserRecord): Promise<boolean>;
  deleteUser(name: string): Promise<boolean>;

  insertNode(n: NewNode): Promise<NodeRecord>;
  updateNode(id: number, u: NodeUpdate): Promise<void>;
  deleteNode(id: number): Promise<boolean>;
  getNode(id: number): Promise<NodeRecord | null>;
  getNodeByKey(nodeKey: string): Promise<NodeRecord | null>;
  listNodes(): Promise<NodeRecord[]>;
  /**
   * The node hostnames and device names that begin with `prefix` (nodes and devices share one namespace), but for the
   * node `exceptNodeId`'s own: what a new name must not be, without reading every node.
   */
  namesStartingWith(prefix: string, exceptNodeId: number | null): Promise<string[]>;
}

/** What one change touched, as the change log records it (a node, or a part of the network; presence: some node's lease). */
export type ChangeKind = 'node' | 'devices' | 'approvals' | 'dns' | 'meta' | 'presence';
export interface Change {
  kind: ChangeKind;
  /** kind `node` only */
  nodeId: number | null;
}
export interface LoggedChange extends Change {
  /** 1, 2, 3…: in commit order, without gaps */
  seq: number;
  /** the control server (replica) that wrote it */
  origin: string;
}
/** What `changesSince` found: the changes in order, or `behind` when the log no longer reaches back to the position. */
export type ChangesSince = { behind: false; head: number; changes: LoggedChange[] } | { behind: true; head: number };

export interface ControlStore extends StoreTx {
  /** what holds the data, for logs: `sqlite FILE` or `postgres HOST/DB` */
  readonly description: string;
  /**
   * Shared stores only: calls `onChange` when another control server commits a
   * change maps are built from; the caller reads the network again.
   */
  watch?(onChange: () => void): Promise<void>;
  /**
   * The change log: every committed write of something maps are built from
   * appended one row per thing it touched, numbered in commit order without
   * gaps. The sequence number of the last one (0: none).
   */
  changeHead(): Promise<number>;
  /** The changes after `since`, in order, at most `limit`; `behind` when the log was pruned past `since`. */
  changesSince(since: number, limit: number): Promise<ChangesSince>;
  close(): Promise<void>;
}
