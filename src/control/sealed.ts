// Opening sealed node requests: the box proves the node key, the header binds
// the box to one operation, and freshness plus a nonce cache stop a captured
// request from being replayed. The nonce cache lives in the store, so it holds
// across a restart of the server (and across servers sharing one database).
import type { KeyObject } from 'node:crypto';
import { boxKey, openBox } from '../crypto/box.js';
import { privateKeyObject } from '../crypto/x25519.js';
import { ControlError, REQUEST_MAX_AGE_MS, type SealedOp } from './protocol.js';
import type { NonceStore } from './store.js';
import { parseSealedHeader, parseSealedJson, parseSealedRequest } from './validate.js';

/** A box is never larger than the request body it travels in (http-util's MAX_BODY_BYTES). */
const MAX_BOX_BYTES = 48 * 1024;
/** Shared box keys kept, one X25519 each to compute; the cache is emptied when it is full. */
const MAX_CACHED_BOX_KEYS = 10_000;
/**
 * Nonces remembered at once, across all node keys. A nonce is kept for the
 * 2 minutes its request stays fresh (REQUEST_MAX_AGE_MS), so this allows ~830
 * sealed requests per second sustained — far above what a network's nodes
 * send (a map stream per reconnect, an endpoint update per change) — while
 * the table stays ~10 MB. At the cap new requests are refused (RATE_LIMITED)
 * until old nonces expire: forgetting a nonce early would let a captured
 * request be replayed, so the cache fails closed, never open.
 */
export const MAX_SEEN_NONCES = 100_000;
/**
 * Nonces one node key may have in the cache at once (2.5 requests per second
 * over the 2-minute window). A flood under one key is refused at this cap and
 * hurts only that key; the global cap above stops floods spread over many keys.
 */
export const MAX_SEEN_NONCES_PER_KEY = 300;

export interface SealedOpenerOptions {
  now?: () => number;
  maxNonces?: number;
  maxNoncesPerKey?: number;
}

export class SealedOpener {
  private readonly keys = new Map<string, Uint8Array>();
  private readonly now: () => number;
  private readonly maxNonces: number;
  private readonly maxNoncesPerKey: number;
  /** the control key as OpenSSL takes it, made once: every new node key needs one X25519 with it */
  private readonly controlKey: KeyObject;

  constructor(
    controlPrivate: Buffer,
    private readonly nonces: NonceStore,
    opts: SealedOpenerOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.maxNonces = opts.maxNonces ?? MAX_SEEN_NONCES;
    this.maxNoncesPerKey = opts.maxNoncesPerKey ?? MAX_SEEN_NONCES_PER_KEY;
    this.controlKey = privateKeyObject(controlPrivate);
  }

  /**
   * Opens a request sent to `op`'s path and parses its body with `parseBody`.
   * Nothing is written: a request whose nonce is remembered is refused as a
   * replay, but a fresh nonce is only remembered by `accept`, which the
   * handler calls once it knows the request changes something. A request that
   * changes nothing (a map request from a key that is not registered, a logout
   * of a node that does not exist, a registration whose auth key is refused)
   * does the same nothing when replayed, so it needs no nonce; remembering one
   * would let a flood from throwaway keys fill the cache that every node needs.
   * Throws a ControlError naming why a request is refused.
   */
  async open<T>(raw: unknown, op: SealedOp, parseBody: (o: Record<string, unknown>) => T): Promise<OpenedRequest<T>> {
    const req = parseSealedRequest(raw, MAX_BOX_BYTES);
    const nodeKey = req.nodeKey;
    let key = this.keys.get(nodeKey);
    if (!key) {
      try {
        key = boxKey(this.controlKey, req.nodeKeyBytes);
      } catch {
        throw new ControlError('BAD_SIGNATURE', 'node key is not a usable X25519 public key');
      }
      if (this.keys.size >= MAX_CACHED_BOX_KEYS) this.keys.clear();
      this.keys.set(nodeKey, key);
    }
    const plain = openBox(key, req.box);
    if (!plain) throw new ControlError('BAD_SIGNATURE', 'request was not sealed with the private half of its node key');
    const sealed = parseSealedJson(plain);
    const header = parseSealedHeader(sealed);
    if (header.op !== op) throw new ControlError('BAD_REQUEST', `request sealed for ${header.op}, sent to ${op}`);
    const now = this.now();
    if (Math.abs(now - header.tsMs) > REQUEST_MAX_AGE_MS) {
      throw new ControlError('STALE_REQUEST', 'request timestamp is more than 2 minutes off: check the clock on this node');
    }
    const body = parseBody(sealed);
    if (await this.nonces.hasNonce(nodeKey, header.nonce, now)) throw replayed();
    return { nodeKey, body, nonce: header.nonce, tsMs: header.tsMs };
  }

  /**
   * Remembers an opened request's nonce; call it inside the transaction that
   * acts on the request, before its first write, so a refusal here rolls the
   * whole request back: `tx` is that transaction's handle. Throws
   * STALE_REQUEST on a replay, RATE_LIMITED at a cap.
   */
  async accept(r: OpenedRequest<unknown>, tx: NonceStore = this.nonces): Promise<void> {
    // the request passes the freshness check until tsMs + REQUEST_MAX_AGE_MS (later than now + the window when
    // the node's clock runs ahead), so its nonce is remembered exactly that long
    const verdict = await tx.rememberNonce(r.nodeKey, r.nonce, r.tsMs + REQUEST_MAX_AGE_MS, this.now(), {
      total: this.maxNonces,
      perNodeKey: this.maxNoncesPerKey,
    });
    if (verdict === 'replayed') throw replayed();
    if (verdict === 'key-full') throw new ControlError('RATE_LIMITED', `more than ${this.maxNoncesPerKey} requests from this node key in 2 minutes: slow down`);
    if (verdict === 'full') {
      throw new ControlError('RATE_LIMITED', 'the control server is refusing requests for a while (too many in the last 2 minutes): try again shortly');
    }
  }
}

/** A sealed request, opened and checked, whose nonce is not remembered yet. */
export interface OpenedRequest<T> {
  nodeKey: string;
  body: T;
  nonce: string;
  tsMs: number;
}

const replayed = (): ControlError => new ControlError('STALE_REQUEST', 'request replayed (its nonce was seen before)');
