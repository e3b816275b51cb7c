// One session's transport keys (whitepaper §5.4.6) and the index table that
// maps our 32-bit receiver indices to keypairs and pending handshakes.
import { randomBytes } from 'node:crypto';
import { ReplayFilter } from './replay.js';

export class Keypair {
  sendCounter = 0;
  readonly replay = new ReplayFilter();
  constructor(
    readonly sendKey: Buffer,
    readonly recvKey: Buffer,
    readonly isInitiator: boolean,
    readonly localIndex: number,
    readonly remoteIndex: number,
    public createdMs: number,
  ) {}
}

/** what an index stands for: a peer's pending handshake (keypair null) or one of its keypairs */
export type IndexEntry<P> = { peer: P; keypair: Keypair | null };

/**
 * Random, unique receiver indices (random so an observer cannot count sessions). They are 30 random bits, so an index
 * is a small integer to V8 and looking one up per packet boxes no number (a 32-bit one would be a 16-byte heap number
 * three times in four); 2^30 is still far more indices than the table ever holds at once.
 */
export const INDEX_MASK = 0x3fffffff;

export class IndexTable<P> {
  private readonly entries = new Map<number, IndexEntry<P>>();

  newIndex(peer: P): number {
    for (;;) {
      const idx = randomBytes(4).readUInt32LE(0) & INDEX_MASK;
      if (!this.entries.has(idx)) {
        this.entries.set(idx, { peer, keypair: null });
        return idx;
      }
    }
  }

  bindKeypair(idx: number, peer: P, keypair: Keypair): void {
    this.entries.set(idx, { peer, keypair });
  }

  get(idx: number): IndexEntry<P> | undefined {
    return this.entries.get(idx);
  }

  delete(idx: number): void {
    this.entries.delete(idx);
  }
}
