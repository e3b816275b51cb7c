// The control protocol between a node and `meshctl control serve`, over HTTPS.
// Requests that act for a node are sealed in a NaCl box from the node key to
// the control key: opening it proves the sender holds the node's private key,
// and the auth key inside is never on the wire in the clear, even inside TLS
// logs. Responses are JSON; the map is a stream of newline-delimited JSON. What
// the answers carry (maps, node views, relay regions) is in src/netmap/types.ts,
// shared with the nodes that parse it.

export const API_PREFIX = '/meshctl/v1';
export const PATHS = {
  key: `${API_PREFIX}/key`,
  register: `${API_PREFIX}/register`,
  map: `${API_PREFIX}/map`,
  endpoints: `${API_PREFIX}/endpoints`,
  advertise: `${API_PREFIX}/advertise`,
  logout: `${API_PREFIX}/logout`,
  verify: `${API_PREFIX}/verify`,
} as const;
export type SealedOp = 'register' | 'map' | 'endpoints' | 'advertise' | 'logout';

/** A sealed request has to be this fresh; with the nonce cache it stops replays. */
export const REQUEST_MAX_AGE_MS = 2 * 60 * 1000;
/**
 * A keepalive line on the map stream. Nodes notice a silent stream with their
 * idle timeout; control keeps data in flight so that TCP_USER_TIMEOUT
 * (liveness.ts) notices a cut link within seconds. ~30 bytes every 3 s per node.
 */
export const MAP_KEEPALIVE_MS = 3 * 1000;

export interface SealedRequest {
  nodeKey: string;
  /** base64 of nonce ‖ box(JSON of the op's body plus SealedHeader) */
  box: string;
}

export interface SealedHeader {
  op: SealedOp;
  tsMs: number;
  nonce: string;
}

export interface RegisterBody {
  authKey?: string;
  hostname: string;
  os: string;
  version: string;
  discoKey: string;
  endpoints: string[];
  /** what the node advertises; absent: unchanged since the node last said */
  advertised?: AdvertiseBody;
}

/**
 * The `advertise` op: the subnet routes (canonical prefixes, at most
 * MAX_NODE_ROUTES) and whether the node offers itself as an exit node. It
 * replaces what the node advertised before; an admin still has to approve.
 */
export interface AdvertiseBody {
  routes: string[];
  exitNode: boolean;
}

export interface MapBody {
  endpoints: string[];
  discoKey: string;
}

export interface EndpointsBody {
  endpoints: string[];
  homeRelay?: string | null;
}

export type ControlErrorCode =
  | 'BAD_REQUEST'
  | 'BAD_SIGNATURE'
  | 'STALE_REQUEST'
  | 'AUTHKEY_REQUIRED'
  | 'AUTHKEY_INVALID'
  | 'AUTHKEY_USED'
  | 'AUTHKEY_EXPIRED'
  | 'AUTHKEY_REVOKED'
  | 'NODE_PENDING'
  | 'CONFLICT'
  | 'NODE_EXPIRED'
  | 'NODE_UNKNOWN'
  | 'NOT_FOUND'
  | 'RATE_LIMITED'
  | 'INTERNAL';

export interface ErrorBody {
  error: { code: ControlErrorCode; message: string };
}

export const HTTP_STATUS: Record<ControlErrorCode, number> = {
  BAD_REQUEST: 400,
  BAD_SIGNATURE: 401,
  STALE_REQUEST: 401,
  AUTHKEY_REQUIRED: 401,
  AUTHKEY_INVALID: 401,
  AUTHKEY_USED: 403,
  AUTHKEY_EXPIRED: 403,
  AUTHKEY_REVOKED: 403,
  NODE_PENDING: 403,
  CONFLICT: 409,
  NODE_EXPIRED: 403,
  NODE_UNKNOWN: 404,
  NOT_FOUND: 404,
  RATE_LIMITED: 429,
  INTERNAL: 500,
};

export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
  }
}
