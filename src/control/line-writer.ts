// Writes a map stream's lines so that no single write hands the TLS socket
// more than MAP_WRITE_PIECE_CHARS. Node's TLS layer encrypts each write into an
// output buffer sized for that write, and a connection keeps its output
// buffer after the data is sent: one whole first map of 60-300 KB written at
// once left a buffer that size behind on every stream, for as long as the
// stream lived (most of control's memory at thousands of streams). A long
// line goes out in pieces instead, the next only once the previous one has
// been handed to the kernel, so what a connection keeps stays at one piece.
import type { Writable } from 'node:stream';

/**
 * The most a stream's socket is handed in one write, in UTF-16 code units
 * (bytes, for the ASCII JSON of a map). Node's TLS output buffers grow in
 * 16 KiB steps whatever the write, so a smaller piece would keep no less;
 * it is also the largest TLS record.
 */
export const MAP_WRITE_PIECE_CHARS = 16 * 1024;

/** What a map stream writes to (an http ServerResponse): write with a flush callback, and the bytes it holds. */
export type LineSink = Pick<Writable, 'writableLength'> & {
  write(chunk: string, cb?: (err?: Error | null) => void): boolean;
};

export class LineWriter {
  private rest: string | null = null;
  /** called once the line going out in pieces is all flushed (or the connection failed) */
  private restSent: (() => void) | null = null;
  private at = 0;
  /** bytes of `rest` not yet handed to the sink */
  private restBytes = 0;

  /**
   * @param onWritable called when a line written in pieces has been handed
   *   over in full and the sink takes more at once (otherwise the sink's own
   *   'drain' says so)
   */
  constructor(
    private readonly sink: LineSink,
    private readonly onWritable: () => void,
    private readonly pieceChars = MAP_WRITE_PIECE_CHARS,
  ) {
    if (!Number.isSafeInteger(pieceChars) || pieceChars < 2) throw new RangeError(`pieceChars must be an integer >= 2, got ${pieceChars}`);
  }

  /** A long line is still being handed over in pieces: nothing else may be written until it is done. */
  get busy(): boolean {
    return this.rest !== null;
  }

  /** Bytes written and not yet sent, plus those of a line still waiting for its pieces to go out. */
  get unsentBytes(): number {
    return this.sink.writableLength + this.restBytes;
  }

  /**
   * Writes `line` (`bytes` long in UTF-8). Returns true when the sink takes
   * more at once; false when the caller must wait: for the sink's 'drain', or
   * for `onWritable` when the line goes out in pieces. Not to be called while busy.
   * `onSent`, when given, is called once when the whole line has been flushed
   * to the connection, or the connection failed first.
   */
  write(line: string, bytes: number, onSent?: () => void): boolean {
    if (this.rest !== null) throw new Error('LineWriter.write while a line is still going out');
    if (line.length <= this.pieceChars) return onSent ? this.sink.write(line, () => onSent()) : this.sink.write(line);
    this.rest = line;
    this.at = 0;
    this.restBytes = bytes;
    this.restSent = onSent ?? null;
    this.next();
    return false;
  }

  /** Hands the sink the next piece; the one after it follows once this one is flushed. */
  private next(): void {
    const line = this.rest;
    if (line === null) return;
    let end = Math.min(line.length, this.at + this.pieceChars);
    // never split a surrogate pair: each half alone would be written as U+FFFD
    const c = line.charCodeAt(end - 1);
    if (end < line.length && c >= 0xd800 && c <= 0xdbff && end - 1 > this.at) end--;
    const piece = line.slice(this.at, end);
    this.at = end;
    this.restBytes = Math.max(0, this.restBytes - Buffer.byteLength(piece));
    if (end < line.length) {
      // an error (the connection closed) ends the line here: the stream is closing
      this.sink.write(piece, (err) => {
        if (!err) return this.next();
        const sent = this.restSent;
        this.restSent = null;
        sent?.();
      });
      return;
    }
    this.rest = null;
    this.restBytes = 0;
    const sent = this.restSent;
    this.restSent = null;
    if (this.sink.write(piece, sent ? () => sent() : undefined)) this.onWritable();
  }
}
