// The default ControlStore: one SQLite file in the state dir, through SQLite
// compiled to WebAssembly (node-sqlite3-wasm) so installing meshctl builds no
// native code (npm 11 blocks install scripts; Node 20 has no node:sqlite).
// Schema changes are numbered migrations applied in order at open.
import { chmodSync, existsSync } from '../util/cjs.js';
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
}

const num = (v: Cell): number => Number(v);

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
      // The WASM build has no shared memory, so no WAL: a rollback journal with
      // full fsync keeps every committed write across a crash. The lock is taken
      // once and kept (db-lock.ts: taking it per statement cost a mkdir and an
      // rmdir each time), and the journal is kept between transactions with its
      // header zeroed (PERSIST) instead of being made and deleted for each.
      this.db.exec('PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = PERSIST; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;');
      // reads the schema (and takes the lock): a file that is not SQLite, or is damaged, fails here
      this.db.get('SELECT count(*) AS n FROM sqlite_master');
      claimLock(path);
      const v = this.schemaVersion;
      if (v === 0 && opts.mustExist) throw new DatabaseError('empty', `control database ${path} is empty`);
      if (v > MIGRATIONS.length) {
        throw new DatabaseError('newer', `control database ${path} has schema version ${v}, newer than this meshctl knows (${MIGRATIONS.length})`);
      }
      this.migrate();
    } catch (err) {
      if (this.db.isOpen) this.close();
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

  close(): void {
    if (!this.db.isOpen) return;
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
  protected abstract call<T>(f: () => T): Promise<T>;
  abstract transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;

  getMeta(key: string): Promise<string | null> {
    return this.call(() => this.db.getMeta(key));
  }
  setMeta(key: string, value: string): Promise<void> {
    return this.call(() => this.db.logged([partChange('meta')], () => this.db.setMeta(key, value)));
  }
  insertAuthKey(k: NewAuthKey): Promise<void> {
    return this.call(() => this.db.insertAuthKey(k));
  }
  getAuthKey(id: string): Promise<AuthKeyRecord | null> {
    return this.call(() => this.db.getAuthKey(id));
  }
  listAuthKeys(): Promise<AuthKeyRecord[]> {
    return this.call(() => this.db.listAuthKeys());
  }
  markAuthKeyUsed(id: string): Promise<void> {
    return this.call(() => this.db.markAuthKeyUsed(id));
  }
  revokeAuthKey(id: string): Promise<boolean> {
    return this.call(() => this.db.revokeAuthKey(id));
  }
  deleteAuthKeysOf(user: string): Promise<number> {
    return this.call(() => this.db.deleteAuthKeysOf(user));
  }
  listUsers(): Promise<UserRecord[]> {
    return this.call(() => this.db.listUsers());
  }
  getUser(name: string): Promise<UserRecord | null> {
    return this.call(() => this.db.getUser(name));
  }
  insertUser(u: UserRecord): Promise<boolean> {
    return this.call(() => this.db.insertUser(u));
  }
  deleteUser(name: string): Promise<boolean> {
    return this.call(() => this.db.deleteUser(name));
  }
  insertNode(n: NewNode): Promise<NodeRecord> {
    return this.call(() =>
      this.db.logged(
        (r: NodeRecord) => [nodeChange(r.id)],
        () => this.db.insertNode(n),
      ),
    );
  }
  updateNode(id: number, u: NodeUpdate): Promise<void> {
    return this.call(() => this.db.logged([nodeChange(id)], () => this.db.updateNode(id, u)));
  }
  deleteNode(id: number): Promise<boolean> {
    return this.call(() => this.db.logged([nodeChange(id), partChange('approvals'), partChange('devices')], () => this.db.deleteNode(id)));
  }
  getNode(id: number): Promise<NodeRecord | null> {
    return this.call(() => this.db.getNode(id));
  }
  getNodeByKey(nodeKey: string): Promise<NodeRecord | null> {
    return this.call(() => this.db.getNodeByKey(nodeKey));
  }
  listNodes(): Promise<NodeRecord[]> {
    return this.call(() => this.db.listNodes());
  }
  rememberNonce(nodeKey: string, nonce: string, expiresAtMs: number, nowMs: number, limits: NonceLimits): Promise<NonceVerdict> {
    return this.call(() => this.db.rememberNonce(nodeKey, nonce, expiresAtMs, nowMs, limits));
  }
  hasNonce(nodeKey: string, nonce: string, nowMs: number): Promise<boolean> {
    return this.call(() => this.db.hasNonce(nodeKey, nonce, nowMs));
  }
  nonceCount(): Promise<number> {
    return this.call(() => this.db.nonceCount());
  }
  listDnsRoutes(): Promise<DnsRouteRecord[]> {
    return this.call(() => this.db.listDnsRoutes());
  }
  putDnsRoute(r: DnsRouteRecord): Promise<boolean> {
    return this.call(() => this.db.logged([partChange('dns')], () => this.db.putDnsRoute(r)));
  }
  deleteDnsRoute(domain: string): Promise<boolean> {
    return this.call(() => this.db.logged([partChange('dns')], () => this.db.deleteDnsRoute(domain)));
  }
  listDnsRecords(): Promise<DnsRecordRecord[]> {
    return this.call(() => this.db.listDnsRecords());
  }
  insertDnsRecord(r: DnsRecordRecord): Promise<boolean> {
    return this.call(() => this.db.logged([partChange('dns')], () => this.db.insertDnsRecord(r)));
  }
  deleteDnsRecords(name: string, value?: string): Promise<number> {
    return this.call(() => this.db.logged([partChange('dns')], () => this.db.deleteDnsRecords(name, value)));
  }
  listRouteApprovals(): Promise<RouteApprovalRecord[]> {
    return this.call(() => this.db.listRouteApprovals());
  }
  approveRoute(a: RouteApprovalRecord): Promise<boolean> {
    return this.call(() => this.db.logged([partChange('approvals')], () => this.db.approveRoute(a)));
  }
  removeRouteApproval(a: RouteApprovalRecord): Promise<boolean> {
    return this.call(() => this.db.logged([partChange('approvals')], () => this.db.removeRouteApproval(a)));
  }
  listDevices(): Promise<DeviceRecord[]> {
    return this.call(() => this.db.listDevices());
  }
  insertDevice(d: Omit<DeviceRecord, 'id'>): Promise<DeviceRecord> {
    return this.call(() => this.db.logged([partChange('devices')], () => this.db.insertDevice(d)));
  }
  deleteDevice(id: number): Promise<boolean> {
    return this.call(() => this.db.logged([partChange('devices')], () => this.db.deleteDevice(id)));
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
  protected call<T>(f: () => T): Promise<T> {
    return settle(f);
  }
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return fn(this);
  }
}

/**
 * The default ControlStore. One connection serves everything, so a
 * transaction, which now spans awaits, holds the file exclusively: statements
 * from elsewhere wait until it commits or rolls back (else they would land in
 * it, and vanish with its rollback). With no transaction open or waiting, a
 * statement runs at once, as fast as the synchronous file allows.
 */
export class SqliteStore extends SqliteOps implements ControlStore {
  /** the end of the queue of work that needs the file alone */
  private tail: Promise<void> = Promise.resolve();
  /** transactions (and statements queued behind them) not finished yet */
  private queued = 0;

  constructor(
    readonly path: string,
    opts: SqliteStoreOptions = {},
  ) {
    super(new SqliteDb(path, opts));
  }

  get description(): string {
    return `sqlite ${this.path}`;
  }

  changeHead(): Promise<number> {
    return this.call(() => this.db.changeHead());
  }
  changesSince(since: number, limit: number): Promise<ChangesSince> {
    return this.call(() => this.db.changesSince(since, limit));
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

  protected call<T>(f: () => T): Promise<T> {
    const p = this.queued === 0 ? settle(f) : this.exclusive(async () => f());
    return p.catch((err: unknown) => Promise.reject(explainWriteError(err, this.path)));
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      this.db.begin();
      try {
        const out = await fn(new SqliteTx(this.db));
        this.db.commit();
        return out;
      } catch (err) {
        this.db.rollback();
        throw explainWriteError(err, this.path);
      }
    });
  }

  close(): Promise<void> {
    // after the work already queued (a transaction in flight finishes first)
    return this.exclusive(async () => this.db.close());
  }
}
