// The admin API as the page calls it: same origin, the session cookie, and the
// session's CSRF token in a header on every write.
import type { AdminAuthKey, RouteRow } from '../../src/control/admin-rows.js';

export type { RouteRow };
/** One row of the auth-key list, as control's admin API sends it. */
export type AuthKeyRow = AdminAuthKey;

export interface ApiError {
  code: string;
  message: string;
  problems?: PolicyProblem[];
}

export interface PolicyProblem {
  message: string;
  field: string | null;
  line: number | null;
  col: number | null;
}

export class RequestFailed extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError,
  ) {
    super(body.message);
  }
}

let csrf: string | null = null;

export function setCsrf(token: string | null): void {
  csrf = token;
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (method === 'POST') {
    headers['content-type'] = 'application/json';
    if (csrf) headers['x-csrf-token'] = csrf;
  }
  const res = await fetch(`/admin/api/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { error: { code: 'BAD_RESPONSE', message: `the server answered ${res.status} without JSON` } };
  }
  if (!res.ok) throw new RequestFailed(res.status, (parsed as { error: ApiError }).error ?? { code: 'UNKNOWN', message: `HTTP ${res.status}` });
  return parsed as T;
}

export const get = <T>(path: string): Promise<T> => call<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}): Promise<T> => call<T>('POST', path, body);

export interface NodeRow {
  id: number;
  name: string;
  addresses: string[];
  os: string;
  version: string;
  online: boolean;
  lastSeen: string | null;
  keyExpiry: string | null;
  expired: boolean;
  user: string | null;
  tags: string[];
  pending: boolean;
  homeRelay: string | null;
  paths: { direct: number; relay: number } | null;
}

export interface NewKey {
  key: string;
  id: string;
  expires: string | null;
  join?: string | null;
  qrSvg: string;
}

export interface RelayRow {
  code: string;
  url: string;
  stunPort: number;
  reachable: boolean;
}

export interface SessionInfo {
  kind: 'session' | 'bearer';
  csrf: string | null;
  expires: string | null;
}
