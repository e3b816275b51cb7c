// What the TCP transfer fixtures (test/integration/fixtures/tcp-xfer.ts and
// bench/faults/stream.ts) share: the deterministic pseudo-random bytes they
// send (a 32-bit LCG, little-endian words: cheap to make at line rate), and
// the receiving end, which hashes what arrived, so any loss, reorder or
// corruption shows in the SHA-256.
import { createHash } from 'node:crypto';
import net from 'node:net';

export class PatternSource {
  private seed = 1;

  /** The next `n` bytes of the pattern. */
  next(n: number): Buffer {
    const chunk = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      this.seed = (this.seed * 1103515245 + 12345) >>> 0;
      if (i + 4 <= n) chunk.writeUInt32LE(this.seed, i);
      else for (let k = 0; i + k < n; k++) chunk[i + k] = (this.seed >>> (8 * k)) & 255;
    }
    return chunk;
  }
}

export interface ReceiveHooks {
  /** a client connected; `bytes` reads the count so far */
  onConnection?: (bytes: () => number) => void;
  /** a chunk arrived (before it is counted) */
  onChunk?: () => void;
  /** the client finished sending: the result line to print, as JSON */
  end: (bytes: number, sha256: string) => object;
}

/**
 * Listens on `port` (printing `listening` once bound) for one connection,
 * counts and hashes what it sends, prints `end`'s line when it finishes and
 * closes. A socket error prints the bytes seen so far and exits 1, so a
 * transfer that broke never looks like one that finished.
 */
export function receiveOne(port: number, hooks: ReceiveHooks): void {
  const srv = net.createServer((s) => {
    const h = createHash('sha256');
    let bytes = 0;
    hooks.onConnection?.(() => bytes);
    s.on('data', (chunk: Buffer) => {
      hooks.onChunk?.();
      bytes += chunk.length;
      h.update(chunk);
    });
    s.on('end', () => {
      process.stdout.write(`${JSON.stringify(hooks.end(bytes, h.digest('hex')))}\n`);
      s.end();
      srv.close();
    });
    s.on('error', (err) => {
      process.stderr.write(`server: ${err.message} after ${bytes} bytes\n`);
      process.exit(1);
    });
  });
  srv.listen(port, () => process.stdout.write('listening\n'));
}
