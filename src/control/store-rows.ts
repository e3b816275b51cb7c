// Rows of the control database turned into typed records, shared by the
// SQLite and PostgreSQL stores. A database is disk (or a network peer): every
// column is checked for its type here, at the edge, and a row that does not fit
// fails with the table and column named instead of flowing on as a wrong value.
import { parseIp } from '../util/netaddr.js';
import type { AuthKeyRecord, DeviceRecord, DnsRecordRecord, DnsRouteRecord, NodeRecord, NodeUpdate, RouteApprovalRecord, UserRecord } from './store.js';

/** A column value as either driver returns it (SQLite: numbers, bigints, text; PostgreSQL: text for BIGINT, booleans). */
export type Cell = number | bigint | string | boolean | Uint8Array | null | undefined;
export type Row = Record<string, Cell>;

/** A stored row did not have the shape meshctl wrote: the message names the table and column. */
export class StoreRowError extends Error {
  override readonly name = 'StoreRowError';
}

const bad = (table: string, col: string, what: string): StoreRowError =>
  new StoreRowError(`control database: ${table}.${col} is not ${what}: restore the database from a backup`);

export function int(r: Row, table: string, col: string): number {
  const v = r[col];
  const n = typeof v === 'number' || typeof v === 'bigint' ? Number(v) : typeof v === 'string' && /^-?\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw bad(table, col, 'a whole number');
  return n;
}
export const intOrNull = (r: Row, table: string, col: string): number | null => (r[col] === null || r[col] === undefined ? null : int(r, table, col));
export function text(r: Row, table: string, col: string): string {
  const v = r[col];
  if (typeof v !== 'string') throw bad(table, col, 'text');
  return v;
}
export const textOrNull = (r: Row, table: string, col: string): string | null => (r[col] === null || r[col] === undefined ? null : text(r, table, col));
/** SQLite keeps booleans as 0/1, PostgreSQL as booleans; a missing column (an old schema) is false. */
export function bool(r: Row, table: string, col: string): boolean {
  const v = r[col];
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  const n = Number(v);
  if (n !== 0 && n !== 1) throw bad(table, col, 'a boolean');
  return n === 1;
}
/** A JSON list of strings kept as text; a missing column (an old schema) is empty. */
export function textList(r: Row, table: string, col: string): string[] {
  const v = r[col];
  if (v === undefined || v === null) return [];
  let out: unknown;
  try {
    out = JSON.parse(String(v));
  } catch {
    throw bad(table, col, 'a JSON list');
  }
  if (!Array.isArray(out) || !out.every((x) => typeof x === 'string')) throw bad(table, col, 'a JSON list of strings');
  return out as string[];
}

/**
 * An IPv6 address as stored, in canonical text: databases made before the
 * prefix was written canonically hold groups with leading zeros
 * (`fdbf:de64:0054::…`), which would not compare equal to the same address
 * parsed elsewhere.
 */
function canonicalIpv6(v: string): string {
  try {
    return parseIp(v).text;
  } catch {
    return v;
  }
}

export function nodeFromRow(r: Row): NodeRecord {
  const t = 'nodes';
  return {
    id: int(r, t, 'id'),
    nodeKey: text(r, t, 'node_key'),
    discoKey: text(r, t, 'disco_key'),
    hostname: text(r, t, 'hostname'),
    requestedHostname: text(r, t, 'requested_hostname'),
    os: text(r, t, 'os'),
    version: text(r, t, 'version'),
    ipv4: text(r, t, 'ipv4'),
    ipv6: canonicalIpv6(text(r, t, 'ipv6')),
    endpoints: textList(r, t, 'endpoints'),
    homeRelay: textOrNull(r, t, 'home_relay'),
    ephemeral: bool(r, t, 'ephemeral'),
    authKeyId: text(r, t, 'authkey_id'),
    createdAtMs: int(r, t, 'created_at_ms'),
    lastSeenMs: intOrNull(r, t, 'last_seen_ms'),
    keyExpiresAtMs: intOrNull(r, t, 'key_expires_at_ms'),
    connected: bool(r, t, 'connected'),
    advertisedRoutes: textList(r, t, 'advertised_routes'),
    advertisedExit: bool(r, t, 'advertised_exit'),
    user: textOrNull(r, t, 'user_name'),
    tags: textList(r, t, 'tags'),
    pending: bool(r, t, 'pending'),
  };
}

export function deviceFromRow(r: Row): DeviceRecord {
  const t = 'devices';
  return {
    id: int(r, t, 'id'),
    name: text(r, t, 'name'),
    publicKey: text(r, t, 'public_key'),
    ipv4: text(r, t, 'ipv4'),
    ipv6: canonicalIpv6(text(r, t, 'ipv6')),
    gatewayId: int(r, t, 'gateway_id'),
    createdAtMs: int(r, t, 'created_at_ms'),
  };
}

export const userFromRow = (r: Row): UserRecord => ({ name: text(r, 'users', 'name'), createdAtMs: int(r, 'users', 'created_at_ms') });

export function authKeyFromRow(r: Row): AuthKeyRecord {
  const t = 'authkeys';
  return {
    id: text(r, t, 'id'),
    secretHash: text(r, t, 'secret_hash'),
    reusable: bool(r, t, 'reusable'),
    ephemeral: bool(r, t, 'ephemeral'),
    createdAtMs: int(r, t, 'created_at_ms'),
    expiresAtMs: intOrNull(r, t, 'expires_at_ms'),
    usedCount: int(r, t, 'used_count'),
    user: textOrNull(r, t, 'user_name'),
    tags: textList(r, t, 'tags'),
    revoked: bool(r, t, 'revoked'),
  };
}

export const dnsRouteFromRow = (r: Row): DnsRouteRecord => ({ domain: text(r, 'dns_routes', 'domain'), resolvers: textList(r, 'dns_routes', 'resolvers') });

export function dnsRecordFromRow(r: Row): DnsRecordRecord {
  const type = text(r, 'dns_records', 'type');
  if (type !== 'A' && type !== 'AAAA') throw bad('dns_records', 'type', 'A or AAAA');
  return { name: text(r, 'dns_records', 'name'), type, value: text(r, 'dns_records', 'value') };
}

export const approvalFromRow = (r: Row): RouteApprovalRecord => ({
  nodeId: int(r, 'route_approvals', 'node_id'),
  prefix: text(r, 'route_approvals', 'prefix'),
});

/** The nodes table's column of each updatable field. */
export const NODE_COLUMN: Record<keyof NodeUpdate, string> = {
  nodeKey: 'node_key',
  discoKey: 'disco_key',
  hostname: 'hostname',
  requestedHostname: 'requested_hostname',
  os: 'os',
  version: 'version',
  ipv4: 'ipv4',
  ipv6: 'ipv6',
  endpoints: 'endpoints',
  homeRelay: 'home_relay',
  ephemeral: 'ephemeral',
  authKeyId: 'authkey_id',
  lastSeenMs: 'last_seen_ms',
  keyExpiresAtMs: 'key_expires_at_ms',
  connected: 'connected',
  advertisedRoutes: 'advertised_routes',
  advertisedExit: 'advertised_exit',
  user: 'user_name',
  tags: 'tags',
  pending: 'pending',
};
