// The default ControlStore: one SQLite file in the state dir, through SQLite
// compiled to WebAssembly (node-sqlite3-wasm) so installing meshctl builds no
// native code (npm 11 blocks install scripts; Node 20 has no node:sqlite).
// Schema changes are numbered migrations applied in order at open.
import { chmodSync, existsSync, renameSync } from '../util/cjs.js';
import sqlite from 'node-sqlite3-wasm';
import { statfsSync } from 'node:fs';
import { claimLock, clearStaleLock, DatabaseInUseError, releaseLock } from './db-lock.js';
import { dirname } from 'node:path';
import {
  approvalFromRow,
  authKeyFromRow,
  deviceFromRow,
  dnsRecordFromRow,
  dnsRouteFromRow,
  NODE_COLUMN as COLUMN,
  nodeFromRow,
  userFromRow,
} from './store-rows.js';
import type { Cell, Row } from './store-rows.js';
import type {
  AuthKeyRecord,
  Change,
  ChangeKind,
  ChangesSince,
  ControlStore,
  StoreTx,
  DeviceRecord,
  DnsRecordRecord,
  DnsRouteRecord,
  NewAuthKey,
  NewNode,
  NodeRecord,
  NodeUpdate,
  NonceLimits,
  NonceVerdict,
  RouteApprovalRecord,
  UserRecord,
} from './store.js';

/** Index i holds the SQL that takes the schema from version i to i + 1. */
const MIGRATIONS: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE authkeys (
     id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, reusable INTEGER NOT NULL,
     ephemeral INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER,
     used_count INTEGER NOT NULL DEFAULT 0);
   CREATE TABLE nodes (
     id INTEGER PRIMARY KEY AUTOINCREMENT, node_key TEXT NOT NULL UNIQUE, disco_key TEXT NOT NULL,
     hostname TEXT NOT NULL UNIQUE, requested_hostname TEXT NOT NULL, os TEXT NOT NULL, version TEXT NOT NULL,
     ipv4 TEXT NOT NULL UNIQUE, ipv6 TEXT NOT NULL UNIQUE, endpoints TEXT NOT NULL, home_relay TEXT,
     ephemeral INTEGER NOT NULL, authkey_id TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
     last_seen_ms INTEGER, key_expires_at_ms INTEGER);`,
  `ALTER TABLE nodes ADD COLUMN connected INTEGER NOT NULL DEFAULT 0;`,
  // the replay cache of sealed requests (sealed.ts): kept here so it survives a restart
  `CREATE TABLE seen_nonces (
     node_key TEXT NOT NULL, nonce TEXT NOT NULL, expires_at_ms INTEGER NOT NULL,
     PRIMARY KEY (node_key, nonce)) WITHOUT ROWID;
   CREATE INDEX seen_nonces_expiry ON seen_nonces (expires_at_ms);`,
  // the name service: split-DNS routes (resolvers as a JSON list) and extra records
  `CREATE TABLE dns_routes (domain TEXT PRIMARY KEY, resolvers TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE dns_records (
     name TEXT NOT NULL, type TEXT NOT NULL CHECK (type IN ('A', 'AAAA')), value TEXT NOT NULL,
     PRIMARY KEY (name, type, value)) WITHOUT ROWID;`,
  // subnet routes and exit nodes: what each node advertises, what an admin approved; devices on stock WireGuard
  `ALTER TABLE nodes ADD COLUMN advertised_routes TEXT NOT NULL DEFAULT '[]';
   ALTER TABLE nodes ADD COLUMN advertised_exit INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE route_approvals (
     node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE, prefix TEXT NOT NULL,
     PRIMARY KEY (node_id, prefix)) WITHOUT ROWID;
   CREATE TABLE devices (
     id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, public_key TEXT NOT NULL UNIQUE,
     ipv4 TEXT NOT NULL UNIQUE, ipv6 TEXT NOT NULL UNIQUE,
     gateway_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE, created_at_ms INTEGER NOT NULL);`,
  // identity: users; auth keys and nodes owned by a user or tagged; revoked keys; nodes pending approval
  `CREATE TABLE users (name TEXT PRIMARY KEY, created_at_ms INTEGER NOT NULL) WITHOUT ROWID;
   ALTER TABLE authkeys ADD COLUMN user_name TEXT;
   ALTER TABLE authkeys ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
   ALTER TABLE authkeys ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE nodes ADD COLUMN user_name TEXT;
   ALTER TABLE nodes ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
   ALTER TABLE nodes ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX nodes_user ON nodes (user_name);
   CREATE INDEX authkeys_user ON authkeys (user_name);`,
  // the change log (the same contract as PostgreSQL's; one process writes, so numbers follow commits trivially)
  `CREATE TABLE change_log (seq INTEGER PRIMARY KEY, origin TEXT NOT NULL, kind TEXT NOT NULL, node_id INTEGER);
   CREATE TABLE change_counter (one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL);
   INSERT INTO change_counter (one, seq) VALUES (1, 0);`,
];

/**
 * Change-log rows kept in the file: a reader further behind reads the whole
 * network; ~60 bytes a row, so ~6 MB (as in PostgreSQL, pg-store.ts).
 */
export const SQLITE_CHANGE_LOG_KEEP_ROWS = 100_000;
/** The log is pruned when the sequence crosses a multiple of this. */
const SQLITE_CHANGE_LOG_PRUNE_EVERY = 1000;
/** The origin of this file's changes: one process writes it. */
const SQLITE_ORIGIN = 'sqlite';
const nodeChange = (id: number): Change => ({ kind: 'node', nodeId: id });
const partChange = (kind: ChangeKind): Change => ({ kind, nodeId: null });

/** Opening the database failed: why, in `kind`; the message names the file and the cause. */
export class DatabaseError extends Error {
  override readonly name = 'DatabaseError';
  constructor(
    readonly kind: 'missing' | 'empty' | 'corrupt' | 'newer' | 'in-use',
    message: string,
  ) {
    super(message);
  }
}

export interface SqliteStoreOptions {
  /** refuse a missing file or one with no schema yet (a network existed: starting an empty one would lose it) */
  mustExist?: boolean;
  /** change-log rows kept (SQLITE_CHANGE_LOG_KEEP_ROWS); tests make it small */
  changeLogKeepRows?: number;
  /** writes committed together at most (GROUP_COMMIT_MAX_WRITES); tests make it small */
  groupCommitMaxWrites?: number;
  /** how long a group stays open for more writes (GROUP_COMMIT_WINDOW_MS) */
  groupCommitWindowMs?: number;
}

const num = (v: Cell): number => Number(v);

function tryRename(from: string, to: string): boolean {
  try {
    renameSync(from, to);
    return true;
  } catch {
    return false;
  }
}

function toSql(v: unknown): number | string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (Array.isArray(v)) return JSON.stringify(v);
  return v as number | string;
}

/** The database file, synchronously: each method runs one statement (or its own small transaction). */
class SqliteDb {
  private readonly db: InstanceType<typeof sqlite.Database>;
  readonly keepRows: number;

  constructor(
    readonly path: string,
    opts: SqliteStoreOptions = {},
  ) {
    this.keepRows = Math.max(1, opts.changeLogKeepRows ?? SQLITE_CHANGE_LOG_KEEP_ROWS);
    const fresh = !existsSync(path);
    if (fresh && opts.mustExist) throw new DatabaseError('missing', `control database ${path} is missing`);
    try {
      clearStaleLock(path);
    } catch (err) {
      if (err instanceof DatabaseInUseError) throw new DatabaseError('in-use', err.message);
      throw err;
    }
    try {
      this.db = new sqlite.Database(path);
    } catch (err) {
      throw new DatabaseError('corrupt', `control database ${path} cannot be opened (${(err as Error).message})`);
    }
    try {
      if (fresh) chmodSync(path, 0o600);
      // The lock is taken once and kept (db-lock.ts: taking it per statement
      // cost a mkdir and an rmdir each time). Held exclusively, the file can be
      // in WAL mode although the WASM build has no shared memory (SQLite keeps
      // the WAL index in the process then): a commit appends to FILE-wal and
      // fsyncs it once, where the kept rollback journal took four (counted at
      // fs.fsyncSync: test/control/group-commit.test.ts), each stopping the
      // event loop. synchronous = FULL: every commit is on disk before it
      // returns. SQLite folds the WAL into the file every 1,000 pages and at
      // close; a crash leaves it beside the file, and the next open replays it.
      this.db.exec('PRAGMA locking_mode = EXCLUSIVE;');
      // reads the schema (and takes the lock): a file that is not SQLite, or is damaged, fails here
      const mode = String((this.db.get('PRAGMA journal_mode = WAL') as Row).journal_mode);
      // a file system where the WAL cannot be made: the kept rollback journal (PERSIST), as safe, with more fsyncs
      if (mode !== 'wal') this.db.exec('PRAGMA journal_mode = PERSIST;');
      this.db.exec('PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;');
      this.db.get('SELECT count(*) AS n FROM sqlite_master');
      claimLock(path);
      const v = this.schemaVersion;
      if (v === 0 && opts.mustExist) throw new DatabaseError('empty', `control database ${path} is empty`);
      if (v > MIGRATIONS.length) {
        throw new DatabaseError('newer', `control database ${path} has schema version ${v}, newer than this meshctl knows (${MIGRATIONS.length})`);
      }
      this.migrate();
    } catch (err) {
      if (this.db.isOpen) this.closeAsFound();
      if (err instanceof DatabaseError) throw err;
      throw new DatabaseError('corrupt', `control database ${path} is not a valid SQLite database (${(err as Error).message})`);
    }
  }

  get schemaVersion(): number {
    return num((this.db.get('PRAGMA user_version') as Row).user_version);
  }

  private migrate(): void {
    for (let v = this.schemaVersion; v < MIGRATIONS.length; v++) {
      this.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  begin(): void {
    this.db.exec('BEGIN IMMEDIATE');
  }
  commit(): void {
    this.db.exec('COMMIT');
  }
  rollback(): void {
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }
  /** Marks where one write of a group commit begins, inside the open transaction. */
  savepoint(): void {
    this.db.exec('SAVEPOINT write');
  }
  /** The write since `savepoint` is kept (it commits with the rest of the transaction). */
  release(): void {
    this.db.exec('RELEASE write');
  }
  /** The write since `savepoint` is undone; what the transaction held before it stays. */
  rollbackToSavepoint(): void {
    this.db.exec('ROLLBACK TO write; RELEASE write');
  }

  /** Runs the write `f` and appends what it touched to the change log, in one transaction (or in the open one). */
  logged<T>(changes: Change[] | ((out: T) => Change[]), f: () => T): T {
    return this.transaction(() => {
      const out = f();
      const list = typeof changes === 'function' ? changes(out) : changes;
      this.db.run('UPDATE change_counter SET seq = seq + ?', [list.length]);
      const head = this.changeHead();
      const first = head - list.length + 1;
      list.forEach((c, i) =>
        this.db.run('INSERT INTO change_log (seq, origin, kind, node_id) VALUES (?, ?, ?, ?)', [first + i, SQLITE_ORIGIN, c.kind, c.nodeId]),
      );
      const every = Math.min(SQLITE_CHANGE_LOG_PRUNE_EVERY, this.keepRows);
      if (Math.floor(head / every) !== Math.floor((first - 1) / every)) {
        this.db.run('DELETE FROM change_log WHERE seq <= ?', [head - this.keepRows]);
      }
      return out;
    });
  }

  changeHead(): number {
    return num((this.db.get('SELECT seq FROM change_counter') as Row).seq);
  }

  changesSince(since: number, limit: number): ChangesSince {
    const head = this.changeHead();
    if (head <= since) return { behind: false, head, changes: [] };
    const rows = this.db.all('SELECT seq, origin, kind, node_id FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?', [since, limit]) as Row[];
    const changes = rows.map((r) => ({
      seq: num(r.seq),
      origin: String(r.origin),
      kind: String(r.kind) as ChangeKind,
      nodeId: r.node_id === null ? null : num(r.node_id),
    }));
    if (changes[0]?.seq !== since + 1) return { behind: true, head };
    return { behind: false, head, changes };
  }

  /** Runs `fn` inside BEGIN IMMEDIATE … COMMIT (or joins the open transaction); ROLLBACK when it throws. */
  transaction<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  getMeta(key: string): string | null {
    const r = this.db.get('SELECT value FROM meta WHERE key = ?', key) as Row | null;
    return r ? String(r.value) : null;
  }
  setMeta(key: string, value: string): void {
    this.db.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  insertAuthKey(k: NewAuthKey): void {
    const cols = 'id, secret_hash, reusable, ephemeral, created_at_ms, expires_at_ms, used_count, user_name, tags, revoked';
    this.db.run(`INSERT INTO authkeys (${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      k.id,
      k.secretHash,
      k.reusable ? 1 : 0,
      k.ephemeral ? 1 : 0,
      k.createdAtMs,
      k.expiresAtMs,
      k.usedCount,
      k.user ?? null,
      JSON.stringify(k.tags ?? []),
      k.revoked ? 1 : 0,
    ]);
  }
  getAuthKey(id: string): AuthKeyRecord | null {
    const r = this.db.get('SELECT * FROM authkeys WHERE id = ?', id) as Row | null;
    return r ? authKeyFromRow(r) : null;
  }
  listAuthKeys(): AuthKeyRecord[] {
    return (this.db.all('SELECT * FROM authkeys ORDER BY created_at_ms') as Row[]).map(authKeyFromRow);
  }
  markAuthKeyUsed(id: string): void {
    this.db.run('UPDATE authkeys SET used_count = used_count + 1 WHERE id = ?', id);
  }
  revokeAuthKey(id: string): boolean {
    return this.db.run('UPDATE authkeys SET revoked = 1 WHERE id = ?', id).changes > 0;
  }
  deleteAuthKeysOf(user: string): number {
    return this.db.run('DELETE FROM authkeys WHERE user_name = ?', user).changes;
  }

  listUsers(): UserRecord[] {
    return (this.db.all('SELECT name, created_at_ms FROM users ORDER BY name') as Row[]).map(userFromRow);
  }
  getUser(name: string): UserRecord | null {
    const r = this.db.get('SELECT name, created_at_ms FROM users WHERE name = ?', name) as Row | null;
    return r ? userFromRow(r) : null;
  }
  insertUser(u: UserRecord): boolean {
    return this.db.run('INSERT INTO users (name, created_at_ms) VALUES (?, ?) ON CONFLICT DO NOTHING', [u.name, u.createdAtMs]).changes > 0;
  }
  deleteUser(name: string): boolean {
    return this.db.run('DELETE FROM users WHERE name = ?', name).changes > 0;
  }

  insertNode(node: NewNode): NodeRecord {
    const n: NewNode = { advertisedRoutes: [], advertisedExit: false, user: null, tags: [], pending: false, ...node };
    const cols = Object.keys(COLUMN) as (keyof NodeUpdate)[];
    const r = this.db.run(`INSERT INTO nodes (${cols.map((c) => COLUMN[c]).join(', ')}, created_at_ms) VALUES (${cols.map(() => '?').join(', ')}, ?)`, [
      ...cols.map((c) => toSql(n[c])),
      n.createdAtMs,
    ]);
    return this.getNode(Number(r.lastInsertRowid))!;
  }
  updateNode(id: number, u: NodeUpdate): void {
    const cols = (Object.keys(u) as (keyof NodeUpdate)[]).filter((c) => COLUMN[c]);
    if (cols.length === 0) return;
    this.db.run(`UPDATE nodes SET ${cols.map((c) => `${COLUMN[c]} = ?`).join(', ')} WHERE id = ?`, [...cols.map((c) => toSql(u[c])), id]);
  }
  deleteNode(id: number): boolean {
    return this.db.run('DELETE FROM nodes WHERE id = ?', id).changes > 0;
  }
  getNode(id: number): NodeRecord | null {
    const r = this.db.get('SELECT * FROM nodes WHERE id = ?', id) as Row | null;
    return r ? nodeFromRow(r) : null;
  }
  getNodeByKey(nodeKey: string): NodeRecord | null {
    const r = this.db.get('SELECT * FROM nodes WHERE node_key = ?', nodeKey) as Row | null;
    return r ? nodeFromRow(r) : null;
  }
  listNodes(): NodeRecord[] {
    return (this.db.all('SELECT * FROM nodes ORDER BY id') as Row[]).map(nodeFromRow);
  }
  namesStartingWith(prefix: string, exceptNodeId: number | null): string[] {
    const rows = this.db.all(
      'SELECT hostname AS name FROM nodes WHERE substr(hostname, 1, ?) = ? AND id IS NOT ? UNION SELECT name FROM devices WHERE substr(name, 1, ?) = ?',
      [prefix.length, prefix, exceptNodeId, prefix.length, prefix],
    ) as Row[];
    return rows.map((r) => String(r.name));
  }

  rememberNonce(nodeKey: string, nonce: string, expiresAtMs: number, nowMs: number, limits: NonceLimits): NonceVerdict {
    return this.transaction(() => {
      this.db.run('DELETE FROM seen_nonces WHERE expires_at_ms < ?', nowMs);
      if (this.db.get('SELECT 1 AS x FROM seen_nonces WHERE node_key = ? AND nonce = ?', [nodeKey, nonce])) return 'replayed';
      const perKey = num((this.db.get('SELECT count(*) AS n FROM seen_nonces WHERE node_key = ?', nodeKey) as Row).n);
      if (perKey >= limits.perNodeKey) return 'key-full';
      if (this.nonceCount() >= limits.total) return 'full';
      this.db.run('INSERT INTO seen_nonces (node_key, nonce, expires_at_ms) VALUES (?, ?, ?)', [nodeKey, nonce, expiresAtMs]);
      return 'fresh';
    });
  }
  hasNonce(nodeKey: string, nonce: string, nowMs: number): boolean {
    return Boolean(this.db.get('SELECT 1 AS x FROM seen_nonces WHERE node_key = ? AND nonce = ? AND expires_at_ms >= ?', [nodeKey, nonce, nowMs]));
  }
  nonceCount(): number {
    return num((this.db.get('SELECT count(*) AS n FROM seen_nonces') as Row).n);
  }

  listDnsRoutes(): DnsRouteRecord[] {
    return (this.db.all('SELECT domain, resolvers FROM dns_routes ORDER BY domain') as Row[]).map(dnsRouteFromRow);
  }
  putDnsRoute(r: DnsRouteRecord): boolean {
    return this.transaction(() => {
      const existed = Boolean(this.db.get('SELECT 1 AS x FROM dns_routes WHERE domain = ?', r.domain));
      this.db.run('INSERT INTO dns_routes (domain, resolvers) VALUES (?, ?) ON CONFLICT(domain) DO UPDATE SET resolvers = excluded.resolvers', [
        r.domain,
        JSON.stringify(r.resolvers),
      ]);
      return !existed;
    });
  }
  deleteDnsRoute(domain: string): boolean {
    return this.db.run('DELETE FROM dns_routes WHERE domain = ?', domain).changes > 0;
  }
  listDnsRecords(): DnsRecordRecord[] {
    return (this.db.all('SELECT name, type, value FROM dns_records ORDER BY name, type, value') as Row[]).map(dnsRecordFromRow);
  }
  insertDnsRecord(r: DnsRecordRecord): boolean {
    return this.db.run('INSERT INTO dns_records (name, type, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [r.name, r.type, r.value]).changes > 0;
  }
  deleteDnsRecords(name: string, value?: string): number {
    const r =
      value === undefined
        ? this.db.run('DELETE FROM dns_records WHERE name = ?', name)
        : this.db.run('DELETE FROM dns_records WHERE name = ? AND value = ?', [name, value]);
    return r.changes;
  }

  listRouteApprovals(): RouteApprovalRecord[] {
    return (this.db.all('SELECT node_id, prefix FROM route_approvals ORDER BY node_id, prefix') as Row[]).map(approvalFromRow);
  }
  approveRoute(a: RouteApprovalRecord): boolean {
    return this.db.run('INSERT INTO route_approvals (node_id, prefix) VALUES (?, ?) ON CONFLICT DO NOTHING', [a.nodeId, a.prefix]).changes > 0;
  }
  removeRouteApproval(a: RouteApprovalRecord): boolean {
    return this.db.run('DELETE FROM route_approvals WHERE node_id = ? AND prefix = ?', [a.nodeId, a.prefix]).changes > 0;
  }
  listDevices(): DeviceRecord[] {
    return (this.db.all('SELECT * FROM devices ORDER BY id') as Row[]).map(deviceFromRow);
  }
  insertDevice(d: Omit<DeviceRecord, 'id'>): DeviceRecord {
    const r = this.db.run('INSERT INTO devices (name, public_key, ipv4, ipv6, gateway_id, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)', [
      d.name,
      d.publicKey,
      d.ipv4,
      d.ipv6,
      d.gatewayId,
      d.createdAtMs,
    ]);
    return deviceFromRow(this.db.get('SELECT * FROM devices WHERE id = ?', Number(r.lastInsertRowid)) as Row);
  }
  deleteDevice(id: number): boolean {
    return this.db.run('DELETE FROM devices WHERE id = ?', id).changes > 0;
  }

  /**
   * Closes a file that failed to open, leaving its WAL as it was: SQLite deletes a WAL beside the file at close
   * even when the file is damaged, and the WAL may hold its last commits (--fresh keeps both aside).
   */
  private closeAsFound(): void {
    const wal = `${this.path}-wal`;
    const keep = `${wal}.kept-${process.pid}`;
    const moved = existsSync(wal) && tryRename(wal, keep);
    releaseLock(this.path);
    this.db.close();
    if (moved) renameSync(keep, wal);
  }

  close(): void {
    if (!this.db.isOpen) return;
    // back to a rollback journal: the WAL is folded into the file, and the file at rest opens in any SQLite (no WAL
    // index needed: an older meshctl, the sqlite3 shell); a crash leaves it in WAL mode, for this code to replay
    try {
      this.db.exec('PRAGMA journal_mode = PERSIST;');
    } catch {
      // left in WAL mode: the next open replays the WAL
    }
    releaseLock(this.path);
    this.db.close();
  }
}

/**
 * The asynchronous face of the file, shared by the store and a transaction's
 * handle; `call` decides when a statement may run.
 */
abstract class SqliteOps implements StoreTx {
  constructor(protected readonly db: SqliteDb) {}
  /** runs a statement (or the db's own small transaction) that only reads */
  protected abstract read<T>(f: () => T): Promise<T>;
  /** runs a write: its promise settles once the write is committed (or failed) */
  protected abstract write<T>(f: () => T): Promise<T>;
  abstract transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;

  getMeta(key: string): Promise<string | null> {
    return this.read(() => this.db.getMeta(key));
  }
  setMeta(key: string, value: string): Promise<void> {
    return this.write(() => this.db.logged([partChange('meta')], () => this.db.setMeta(key, value)));
  }
  insertAuthKey(k: NewAuthKey): Promise<void> {
    return this.write(() => this.db.insertAuthKey(k));
  }
  getAuthKey(id: string): Promise<AuthKeyRecord | null> {
    return this.read(() => this.db.getAuthKey(id));
  }
  listAuthKeys(): Promise<AuthKeyRecord[]> {
    return this.read(() => this.db.listAuthKeys());
  }
  markAuthKeyUsed(id: string): Promise<void> {
    return this.write(() => this.db.markAuthKeyUsed(id));
  }
  revokeAuthKey(id: string): Promise<boolean> {
    return this.write(() => this.db.revokeAuthKey(id));
  }
  deleteAuthKeysOf(user: string): Promise<number> {
    return this.write(() => this.db.deleteAuthKeysOf(user));
  }
  listUsers(): Promise<UserRecord[]> {
    return this.read(() => this.db.listUsers());
  }
  getUser(name: string): Promise<UserRecord | null> {
    return this.read(() => this.db.getUser(name));
  }
  insertUser(u: UserRecord): Promise<boolean> {
    return this.write(() => this.db.insertUser(u));
  }
  deleteUser(name: string): Promise<boolean> {
    return this.write(() => this.db.deleteUser(name));
  }
  insertNode(n: NewNode): Promise<NodeRecord> {
    return this.write(() =>
      this.db.logged(
        (r: NodeRecord) => [nodeChange(r.id)],
        () => this.db.insertNode(n),
      ),
    );
  }
  updateNode(id: number, u: NodeUpdate): Promise<void> {
    return this.write(() => this.db.logged([nodeChange(id)], () => this.db.updateNode(id, u)));
  }
  deleteNode(id: number): Promise<boolean> {
    return this.write(() => this.db.logged([nodeChange(id), partChange('approvals'), partChange('devices')], () => this.db.deleteNode(id)));
  }
  getNode(id: number): Promise<NodeRecord | null> {
    return this.read(() => this.db.getNode(id));
  }
  getNodeByKey(nodeKey: string): Promise<NodeRecord | null> {
    return this.read(() => this.db.getNodeByKey(nodeKey));
  }
  listNodes(): Promise<NodeRecord[]> {
    return this.read(() => this.db.listNodes());
  }
  namesStartingWith(prefix: string, exceptNodeId: number | null): Promise<string[]> {
    return this.read(() => this.db.namesStartingWith(prefix, exceptNodeId));
  }
  rememberNonce(nodeKey: string, nonce: string, expiresAtMs: number, nowMs: number, limits: NonceLimits): Promise<NonceVerdict> {
    return this.write(() => this.db.rememberNonce(nodeKey, nonce, expiresAtMs, nowMs, limits));
  }
  hasNonce(nodeKey: string, nonce: string, nowMs: number): Promise<boolean> {
    return this.read(() => this.db.hasNonce(nodeKey, nonce, nowMs));
  }
  nonceCount(): Promise<number> {
    return this.read(() => this.db.nonceCount());
  }
  listDnsRoutes(): Promise<DnsRouteRecord[]> {
    return this.read(() => this.db.listDnsRoutes());
  }
  putDnsRoute(r: DnsRouteRecord): Promise<boolean> {
    return this.write(() => this.db.logged([partChange('dns')], () => this.db.putDnsRoute(r)));
  }
  deleteDnsRoute(domain: string): Promise<boolean> {
    return this.write(() => this.db.logged([partChange('dns')], () => this.db.deleteDnsRoute(domain)));
  }
  listDnsRecords(): Promise<DnsRecordRecord[]> {
    return this.read(() => this.db.listDnsRecords());
  }
  insertDnsRecord(r: DnsRecordRecord): Promise<boolean> {
    return this.write(() => this.db.logged([partChange('dns')], () => this.db.insertDnsRecord(r)));
  }
  deleteDnsRecords(name: string, value?: string): Promise<number> {
    return this.write(() => this.db.logged([partChange('dns')], () => this.db.deleteDnsRecords(name, value)));
  }
  listRouteApprovals(): Promise<RouteApprovalRecord[]> {
    return this.read(() => this.db.listRouteApprovals());
  }
  approveRoute(a: RouteApprovalRecord): Promise<boolean> {
    return this.write(() => this.db.logged([partChange('approvals')], () => this.db.approveRoute(a)));
  }
  removeRouteApproval(a: RouteApprovalRecord): Promise<boolean> {
    return this.write(() => this.db.logged([partChange('approvals')], () => this.db.removeRouteApproval(a)));
  }
  listDevices(): Promise<DeviceRecord[]> {
    return this.read(() => this.db.listDevices());
  }
  insertDevice(d: Omit<DeviceRecord, 'id'>): Promise<DeviceRecord> {
    return this.write(() => this.db.logged([partChange('devices')], () => this.db.insertDevice(d)));
  }
  deleteDevice(id: number): Promise<boolean> {
    return this.write(() => this.db.logged([partChange('devices')], () => this.db.deleteDevice(id)));
  }
}

/**
 * Below this much free space a failed write is put down to a full disk. SQLite's WASM build reports ENOSPC only as
 * "disk I/O error"; a journal and a page or two need tens of KiB, so a filesystem with less than 1 MiB free is full.
 */
const DISK_FULL_FREE_BYTES = 1024 * 1024;

/**
 * A write that failed because the disk under the database is full, as a one-line error that says so and what to do;
 * any other error as it is. The transaction was rolled back, so the database is as it was before.
 */
export function explainWriteError(err: unknown, path: string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  if (!/disk I\/O error|database or disk is full/i.test(e.message)) return e;
  let free: number;
  try {
    const st = statfsSync(dirname(path));
    free = st.bavail * st.bsize;
  } catch {
    return e;
  }
  if (free >= DISK_FULL_FREE_BYTES) return e;
  return new Error(`the disk holding ${dirname(path)} is full (${free} bytes free): nothing was saved; free space there and retry`);
}

/** Runs `f` now, its result or throw as a promise. */
function settle<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/** A transaction's handle: its statements run at once, inside the transaction its store holds open for it. */
class SqliteTx extends SqliteOps {
  protected read<T>(f: () => T): Promise<T> {
    return settle(f);
  }
  protected write<T>(f: () => T): Promise<T> {
    return settle(f);
  }
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return fn(this);
  }
}

/**
 * Writes committed together at most: a failed commit fails all of them, and
 * their journal grows with each; one turn of the event loop at 5,000 nodes
 * brings a few dozen map streams at most, so this bounds a storm, not the
 * usual group.
 */
export const GROUP_COMMIT_MAX_WRITES = 256;

/**
 * How long a group stays open for more writes after its first one, in ms.
 * A commit stops the event loop for its fsync (ms on a shared disk), and the
 * requests that arrive meanwhile are the next group: waiting this long
 * lets map streams opened a few ms apart share a commit, at a cost of at most
 * this much to each write's answer, which a network round trip dwarfs. 0: the
 * group commits at the end of the turn of the event loop its first write ran in.
 */
export const GROUP_COMMIT_WINDOW_MS = 5;

/** A write waiting for the commit of its group. */
interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/** The writes of the open SQLite transaction, and the reads that wait until it commits. */
interface Group {
  writes: Waiter[];
  /** reads asked for while the group's writes were uncommitted: they run right after the commit (or rollback) */
  reads: (() => void)[];
  /** its commit is scheduled (when its window ends) */
  scheduled: boolean;
}

/** How many commits the store made and how many writes (and transactions) they carried. */
export interface CommitStats {
  commits: number;
  writes: number;
  /** groups whose commit failed: every write in them was refused */
  failedCommits: number;
}

/**
 * The default ControlStore. One connection serves everything, so a
 * transaction, which spans awaits, holds the file exclusively: statements
 * from elsewhere wait until it is done (else they would land in it, and
 * vanish with its rollback).
 *
 * Group commit. A commit costs an fsync (WAL, synchronous = FULL; four with
 * a rollback journal), and node-sqlite3-wasm is synchronous, so each one
 * stops the event loop for the disk. Writes (each store write, each
 * transaction) that come while a group is open therefore share one SQLite
 * transaction: each runs inside its own savepoint (a failing one is rolled
 * back alone and rejected at once), and the group commits once,
 * GROUP_COMMIT_WINDOW_MS after its first write (behind the writes already
 * queued, which join it), or sooner when it holds GROUP_COMMIT_MAX_WRITES. No write resolves before its
 * group's COMMIT returned, so nobody answers a request whose writes could
 * still be lost; when the COMMIT fails, the group is rolled back and every
 * write in it is rejected with the error (what earlier groups committed
 * stays). A read asked for while a group is uncommitted runs right after that
 * commit: nobody reads a write that may yet roll back.
 */
export class SqliteStore extends SqliteOps implements ControlStore {
  /** the end of the queue of work that needs the file alone */
  private tail: Promise<void> = Promise.resolve();
  /** transactions (and statements queued behind them) not finished yet */
  private queued = 0;
  /** the writes in the open SQLite transaction, not committed yet */
  private group: Group | null = null;
  private readonly maxGroupWrites: number;
  private readonly groupWindowMs: number;
  private readonly stats: CommitStats = { commits: 0, writes: 0, failedCommits: 0 };

  constructor(
    readonly path: string,
    opts: SqliteStoreOptions = {},
  ) {
    super(new SqliteDb(path, opts));
    this.maxGroupWrites = Math.max(1, opts.groupCommitMaxWrites ?? GROUP_COMMIT_MAX_WRITES);
    this.groupWindowMs = Math.max(0, opts.groupCommitWindowMs ?? GROUP_COMMIT_WINDOW_MS);
  }

  get description(): string {
    return `sqlite ${this.path}`;
  }

  /** Commits so far and the writes they carried (a copy). */
  get commitStats(): CommitStats {
    return { ...this.stats };
  }

  changeHead(): Promise<number> {
    return this.read(() => this.db.changeHead());
  }
  changesSince(since: number, limit: number): Promise<ChangesSince> {
    return this.read(() => this.db.changesSince(since, limit));
  }

  get schemaVersion(): number {
    return this.db.schemaVersion;
  }

  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const before = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    this.queued++;
    return before.then(f).finally(() => {
      this.queued--;
      release();
    });
  }

  /** Runs the read now, or once the uncommitted group (if any) has committed. */
  private readCommitted<T>(f: () => T): Promise<T> {
    const g = this.group;
    if (!g) return settle(f);
    return new Promise<T>((resolve, reject) => {
      g.reads.push(() => settle(f).then(resolve, reject));
    });
  }

  protected read<T>(f: () => T): Promise<T> {
    if (this.queued === 0) return this.readCommitted(f);
    // its turn comes after the work queued before it; a read put off until a commit does not hold the file meanwhile
    return this.exclusive(async () => ({ later: this.readCommitted(f) })).then((r) => r.later);
  }

  protected write<T>(f: () => T): Promise<T> {
    return this.grouped(async () => f());
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.grouped(() => fn(new SqliteTx(this.db)));
  }

  /** Runs `fn` as one write of the open group (opening one when none is); resolves once that group has committed. */
  private async grouped<T>(fn: () => Promise<T>): Promise<T> {
    const { out, committed } = await this.exclusive(async () => {
      let g: Group;
      try {
        g = this.openGroup();
      } catch (err) {
        throw explainWriteError(err, this.path);
      }
      try {
        this.db.savepoint();
        const out = await fn();
        this.db.release();
        const committed = new Promise<void>((resolve, reject) => g.writes.push({ resolve, reject }));
        // awaited below; a group committed (or failed) before that await is reached is not an unhandled rejection
        committed.catch(() => {});
        return { out, committed };
      } catch (err) {
        const e = explainWriteError(err, this.path);
        this.undoWrite(g, e);
        throw e;
      } finally {
        this.scheduleCommit(g);
      }
    });
    await committed;
    return out;
  }

  /** The open group, or a new one (BEGIN IMMEDIATE); a full group is committed first. Called holding the file alone. */
  private openGroup(): Group {
    if (this.group && this.group.writes.length >= this.maxGroupWrites) this.commitGroup(this.group);
    if (this.group) return this.group;
    this.db.begin();
    this.group = { writes: [], reads: [], scheduled: false };
    return this.group;
  }

  /** A write of group `g` failed: its savepoint is rolled back; when SQLite rolled back the whole transaction, the group fails. */
  private undoWrite(g: Group, err: Error): void {
    if (this.db.inTransaction) {
      try {
        this.db.rollbackToSavepoint();
        return;
      } catch {
        // the savepoint cannot be undone alone: the group goes with it
      }
    }
    // SQLite ends the transaction itself on some I/O and full-disk errors: the group's other writes are gone too
    this.finishGroup(g, err);
  }

  /** Commits `g` when its window ends (0: at the end of this turn of the event loop), after the work queued for the file. */
  private scheduleCommit(g: Group): void {
    if (g.scheduled || this.group !== g) return;
    g.scheduled = true;
    const commit = (): void => void this.exclusive(async () => this.commitGroup(g));
    if (this.groupWindowMs === 0) setImmediate(commit);
    else setTimeout(commit, this.groupWindowMs);
  }

  /** COMMIT, then the reads that waited for it, then the writes' callers. Called holding the file alone. */
  private commitGroup(g: Group): void {
    if (this.group !== g) return;
    try {
      this.db.commit();
    } catch (err) {
      this.finishGroup(g, explainWriteError(err, this.path));
      return;
    }
    this.stats.commits++;
    this.stats.writes += g.writes.length;
    this.finishGroup(g, null);
  }

  /** Ends group `g`: rolled back when `err` is given (its writes are refused with it), its waiting reads run. */
  private finishGroup(g: Group, err: Error | null): void {
    this.group = null;
    if (err) {
      this.stats.failedCommits++;
      try {
        this.db.rollback();
      } catch {
        // SQLite already rolled back
      }
    }
    for (const r of g.reads) r();
    for (const w of g.writes) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  close(): Promise<void> {
    // after the work already queued (a transaction in flight finishes first), and with the open group committed
    return this.exclusive(async () => {
      if (this.group) this.commitGroup(this.group);
      this.db.close();
    });
  }
}
