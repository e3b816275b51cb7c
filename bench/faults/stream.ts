// A paced TCP stream for the fault suite: the client sends `seconds` of
// deterministic pseudo-random bytes at `rate` bits/s; the server prints a
// progress line every PROGRESS_MS and, at the end, the byte count and SHA-256
// it saw. The client prints what it sent. Each side exits non-zero on a socket
// error, so a stream that broke never looks like one that finished.
// server: node stream.js server PORT   client: node stream.js client HOST PORT RATE_BPS SECONDS
import { createHash } from 'node:crypto';
import net from 'node:net';
import { PatternSource, receiveOne } from '../../test/helpers/xfer-pattern.js';

/** How often the server reports progress: fine enough to time a stall to a tenth of a second. */
const PROGRESS_MS = 100;
/** Writes are this big: a tenth of a second of a 10 Mbit/s stream. */
const CHUNK_BYTES = 16 * 1024;

export interface StreamProgress {
  t: number;
  bytes: number;
}

export interface StreamResult {
  bytes: number;
  sha256: string;
}

function main(): void {
  const [mode, a, b, c, d] = process.argv.slice(2);
  if (mode === 'server') {
    let tick: NodeJS.Timeout | undefined;
    receiveOne(Number(a), {
      onConnection: (bytes) => {
        tick = setInterval(() => process.stdout.write(`${JSON.stringify({ t: Date.now(), bytes: bytes() })}\n`), PROGRESS_MS);
      },
      end: (bytes, sha256) => {
        clearInterval(tick);
        return { done: true, bytes, sha256 };
      },
    });
    return;
  }
  const rateBps = Number(c);
  const endAt = Date.now() + Number(d) * 1000;
  const start = Date.now();
  const h = createHash('sha256');
  let sent = 0;
  const pattern = new PatternSource();
  let failed = false;
  const s = net.connect(Number(b), a!, () => {
    const pump = (): void => {
      const now = Date.now();
      if (now >= endAt) return void s.end();
      const due = ((now - start) / 1000) * (rateBps / 8);
      while (sent < due) {
        const chunk = pattern.next(CHUNK_BYTES);
        h.update(chunk);
        sent += CHUNK_BYTES;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      setTimeout(pump, 20);
    };
    pump();
  });
  s.on('error', (err) => {
    failed = true;
    process.stderr.write(`client: ${err.message} after ${sent} bytes\n`);
  });
  s.on('close', () => {
    process.stdout.write(`${JSON.stringify({ done: true, bytes: sent, sha256: h.digest('hex') })}\n`);
    if (failed) process.exitCode = 1;
  });
  s.resume();
}

if (process.argv[1]?.endsWith('stream.js')) main();
