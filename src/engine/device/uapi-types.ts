// The data model of the WireGuard cross-platform UAPI (wireguard.com/xplatform),
// shared by the text codec (uapi.ts), its socket server (../ipc/uapi-server.ts) and the
// device that applies it. Keys are raw 32-byte buffers; the codec does hex.

export interface UapiEndpoint {
  /** IPv4 dotted quad or IPv6 text without brackets */
  address: string;
  port: number;
}

export interface UapiCidr {
  /** normalised address text (IPv4 dotted quad or IPv6) */
  address: string;
  bits: number;
  family: 4 | 6;
}

/** What `get=1` reports for one peer. */
export interface UapiPeerSnapshot {
  publicKey: Buffer;
  presharedKey: Buffer | null;
  endpoint: UapiEndpoint | null;
  persistentKeepaliveSeconds: number;
  lastHandshakeTimeSec: number;
  lastHandshakeTimeNsec: number;
  rxBytes: bigint;
  txBytes: bigint;
  allowedIps: UapiCidr[];
}

/** What `get=1` reports for the device. */
export interface UapiDeviceSnapshot {
  privateKey: Buffer | null;
  listenPort: number;
  fwmark: number;
  peers: UapiPeerSnapshot[];
}

/** One peer section of a `set=1` request, in the order given. */
export interface UapiPeerChange {
  publicKey: Buffer;
  remove: boolean;
  updateOnly: boolean;
  /** undefined: unchanged; all-zero buffer means "no psk" */
  presharedKey?: Buffer;
  endpoint?: UapiEndpoint;
  persistentKeepaliveSeconds?: number;
  replaceAllowedIps: boolean;
  allowedIps: UapiCidr[];
}

/** A whole parsed `set=1` request. Device-level fields undefined mean unchanged. */
export interface UapiSetRequest {
  /** all-zero buffer means "remove the private key" */
  privateKey?: Buffer;
  listenPort?: number;
  fwmark?: number;
  replacePeers: boolean;
  peers: UapiPeerChange[];
}

/** What the UAPI server drives: the engine's device implements it. */
export interface UapiTarget {
  snapshot(): UapiDeviceSnapshot;
  /** Applies the request; throws UapiError for a refused change (e.g. port in use). */
  applySet(req: UapiSetRequest): Promise<void>;
}

/**
 * errno values in `errno=N` answers. wireguard-go answers with negative errno
 * values (see its ipc error codes); we answer exactly what it does so scripts
 * that check `wg`'s exit status see the same thing.
 */
export class UapiError extends Error {
  override readonly name = 'UapiError';
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}
