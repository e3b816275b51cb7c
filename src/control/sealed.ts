// Opening sealed node requests: the box proves the node key, the header binds
// the box to one operation, and freshness plus a nonce cache stop a captured
// request from being replayed.
import { boxKey, openBox } from '../crypto/box.js';
import { keyFromText } from '../crypto/keys.js';
import { ControlError, REQUEST_MAX_AGE_MS, type SealedHeader, type SealedOp, type SealedRequest } from './protocol.js';

export class SealedOpener {
  private readonly seen = new Map<string, number>();
  private readonly keys = new Map<string, Uint8Array>();

  constructor(private readonly controlPrivate: Buffer, private readonly now: () => number = Date.now) {}

  open<T>(raw: unknown, op: SealedOp): { nodeKey: string; body: T } {
    const req = raw as Partial<SealedRequest> | null;
    const nodeKeyBytes = keyFromText(req?.nodeKey);
    if (!nodeKeyBytes || typeof req?.box !== 'string') throw new ControlError('BAD_REQUEST', 'request needs nodeKey and box');
    const nodeKey = req.nodeKey!;
    let key = this.keys.get(nodeKey);
    if (!key) {
      try {
        key = boxKey(this.controlPrivate, nodeKeyBytes);
      } catch {
        throw new ControlError('BAD_SIGNATURE', 'node key is not a usable X25519 public key');
      }
      if (this.keys.size > 10_000) this.keys.clear();
      this.keys.set(nodeKey, key);
    }
    const plain = openBox(key, Buffer.from(req.box, 'base64'));
    if (!plain) throw new ControlError('BAD_SIGNATURE', 'request was not sealed with the private half of its node key');
    let parsed: SealedHeader & T;
    try {
      parsed = JSON.parse(plain.toString('utf8')) as SealedHeader & T;
    } catch {
      throw new ControlError('BAD_REQUEST', 'sealed body is not JSON');
    }
    if (parsed.op !== op) throw new ControlError('BAD_REQUEST', `sealed for ${String(parsed.op)}, sent to ${op}`);
    const now = this.now();
    if (typeof parsed.tsMs !== 'number' || Math.abs(now - parsed.tsMs) > REQUEST_MAX_AGE_MS) {
      throw new ControlError('STALE_REQUEST', 'request timestamp is more than 2 minutes off: check the clock on this node');
    }
    const id = `${nodeKey}/${String(parsed.nonce)}`;
    if (this.seen.has(id)) throw new ControlError('STALE_REQUEST', 'request replayed');
    this.seen.set(id, now + REQUEST_MAX_AGE_MS);
    if (this.seen.size > 1000) for (const [k, exp] of this.seen) if (exp < now) this.seen.delete(k);
    return { nodeKey, body: parsed };
  }
}
