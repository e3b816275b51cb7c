// The Noise_IKpsk2 handshake of WireGuard (whitepaper §5.4.2–5.4.5) as pure
// functions over explicit state: the peer/device layers own indices, timers and
// replay of timestamps; this file owns only the cryptographic transcript.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CONSTRUCTION, IDENTIFIER } from './constants.js';
import { aeadOpen, aeadSeal, dh, hash, kdf, KEY_LEN, privateKeyObject, publicKeyOf } from './crypto.js';
import type { Initiation, Response } from './messages.js';

const EMPTY = Buffer.alloc(0);
const ZERO_KEY = Buffer.alloc(KEY_LEN);
const INITIAL_CHAIN_KEY = hash(Buffer.from(CONSTRUCTION));
const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, Buffer.from(IDENTIFIER));

export interface StaticIdentity {
  privateKey: Buffer;
  privateKeyObject: KeyObject;
  publicKey: Buffer;
  /** HASH(H0 || our public key): the responder's starting hash, computed once */
  responderHash: Buffer;
}

export function makeIdentity(privateKey: Buffer): StaticIdentity {
  const ko = privateKeyObject(privateKey);
  const publicKey = publicKeyOf(ko);
  return { privateKey, privateKeyObject: ko, publicKey, responderHash: hash(INITIAL_HASH, publicKey) };
}

/** What the handshake needs to know about one remote peer. */
export interface RemoteStatic {
  publicKey: Buffer;
  /** all zero when no pre-shared key is set (Q = 0^32) */
  presharedKey: Buffer;
  /** DH(our static, their static), or null if their key is weak */
  staticStatic: Buffer | null;
  /** HASH(H0 || their public key): the initiator's starting hash */
  initiatorHash: Buffer;
}

export function makeRemoteStatic(local: StaticIdentity | null, publicKey: Buffer, psk: Buffer | null): RemoteStatic {
  let staticStatic: Buffer | null = null;
  if (local) {
    try {
      staticStatic = dh(local.privateKeyObject, publicKey);
    } catch {
      staticStatic = null;
    }
  }
  return {
    publicKey,
    presharedKey: psk ?? ZERO_KEY,
    staticStatic,
    initiatorHash: hash(INITIAL_HASH, publicKey),
  };
}

export interface TransportKeys {
  send: Buffer;
  recv: Buffer;
}

export interface InitiatorState {
  chainKey: Buffer;
  hash: Buffer;
  ephemeral: KeyObject;
}

interface Ephemeral {
  key: KeyObject;
  pub: Buffer;
}

/** A fresh ephemeral key pair; tests pass a fixed private key to get known bytes. */
function newEphemeral(fixed?: Buffer): Ephemeral {
  const key = fixed ? privateKeyObject(fixed) : generateKeyPairSync('x25519').privateKey;
  return { key, pub: publicKeyOf(key) };
}

/** Builds an initiation (MACs left zero for the cookie layer to fill). Throws WeakKeyError. */
export function createInitiation(
  local: StaticIdentity,
  remote: RemoteStatic,
  sender: number,
  timestamp: Buffer,
  fixedEphemeral?: Buffer,
): { message: Initiation; state: InitiatorState } {
  if (!remote.staticStatic) throw new Error('peer public key is weak or no private key is set');
  const e = newEphemeral(fixedEphemeral);
  let c = kdf(1, INITIAL_CHAIN_KEY, e.pub)[0]!;
  let h = hash(remote.initiatorHash, e.pub);
  let k: Buffer;
  [c, k] = kdf(2, c, dh(e.key, remote.publicKey)) as [Buffer, Buffer];
  const encryptedStatic = aeadSeal(k, 0, local.publicKey, h);
  h = hash(h, encryptedStatic);
  [c, k] = kdf(2, c, remote.staticStatic) as [Buffer, Buffer];
  const encryptedTimestamp = aeadSeal(k, 0, timestamp, h);
  h = hash(h, encryptedTimestamp);
  return {
    message: {
      sender,
      ephemeral: e.pub,
      encryptedStatic,
      encryptedTimestamp,
      mac1: Buffer.alloc(16),
      mac2: Buffer.alloc(16),
    },
    state: { chainKey: c, hash: h, ephemeral: e.key },
  };
}

export interface ConsumedInitiation {
  remoteStaticKey: Buffer;
  timestamp: Buffer;
  remoteIndex: number;
  remoteEphemeral: Buffer;
  chainKey: Buffer;
  hash: Buffer;
}

/**
 * Opens an initiation addressed to us. `lookupStaticStatic` returns the cached
 * DH with the claimed sender, or null if that key is not a configured peer.
 */
export function consumeInitiation(
  local: StaticIdentity,
  m: Initiation,
  lookupStaticStatic: (remoteStatic: Buffer) => Buffer | null,
): ConsumedInitiation | null {
  let c = kdf(1, INITIAL_CHAIN_KEY, m.ephemeral)[0]!;
  let h = hash(local.responderHash, m.ephemeral);
  let k: Buffer;
  let shared: Buffer;
  try {
    shared = dh(local.privateKeyObject, m.ephemeral);
  } catch {
    return null;
  }
  [c, k] = kdf(2, c, shared) as [Buffer, Buffer];
  const remoteStaticKey = aeadOpen(k, 0, m.encryptedStatic, h);
  if (!remoteStaticKey) return null;
  h = hash(h, m.encryptedStatic);
  const ss = lookupStaticStatic(remoteStaticKey);
  if (!ss) return null;
  [c, k] = kdf(2, c, ss) as [Buffer, Buffer];
  const timestamp = aeadOpen(k, 0, m.encryptedTimestamp, h);
  if (!timestamp) return null;
  h = hash(h, m.encryptedTimestamp);
  return {
    remoteStaticKey,
    timestamp,
    remoteIndex: m.sender,
    remoteEphemeral: Buffer.from(m.ephemeral),
    chainKey: c,
    hash: h,
  };
}

/** Builds the response to a consumed initiation and derives the responder's keys. */
export function createResponse(
  remote: RemoteStatic,
  st: ConsumedInitiation,
  sender: number,
  fixedEphemeral?: Buffer,
): { message: Response; keys: TransportKeys } {
  const e = newEphemeral(fixedEphemeral);
  let c = kdf(1, st.chainKey, e.pub)[0]!;
  let h = hash(st.hash, e.pub);
  c = kdf(1, c, dh(e.key, st.remoteEphemeral))[0]!;
  c = kdf(1, c, dh(e.key, remote.publicKey))[0]!;
  const [c2, tau, k] = kdf(3, c, remote.presharedKey) as [Buffer, Buffer, Buffer];
  h = hash(h, tau);
  const encryptedNothing = aeadSeal(k, 0, EMPTY, h);
  const [recv, send] = kdf(2, c2, EMPTY) as [Buffer, Buffer];
  return {
    message: {
      sender,
      receiver: st.remoteIndex,
      ephemeral: e.pub,
      encryptedNothing,
      mac1: Buffer.alloc(16),
      mac2: Buffer.alloc(16),
    },
    keys: { send, recv },
  };
}

/** Completes the initiator's side; null if the response does not authenticate. */
export function consumeResponse(local: StaticIdentity, remote: RemoteStatic, st: InitiatorState, m: Response): TransportKeys | null {
  try {
    let c = kdf(1, st.chainKey, m.ephemeral)[0]!;
    let h = hash(st.hash, m.ephemeral);
    c = kdf(1, c, dh(st.ephemeral, m.ephemeral))[0]!;
    c = kdf(1, c, dh(local.privateKeyObject, m.ephemeral))[0]!;
    const [c2, tau, k] = kdf(3, c, remote.presharedKey) as [Buffer, Buffer, Buffer];
    h = hash(h, tau);
    if (!aeadOpen(k, 0, m.encryptedNothing, h)) return null;
    const [send, recv] = kdf(2, c2, EMPTY) as [Buffer, Buffer];
    return { send, recv };
  } catch {
    return null;
  }
}
