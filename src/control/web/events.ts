// Server-sent events for the admin page: one `changed` event whenever the
// network changes (the same notifications that push maps), debounced, so the
// page reloads what it shows. The events carry no data: what changed is read
// through the API, with the caller's credentials.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Open event streams at once: a few operators with a few tabs each; each holds a TLS connection. */
export const MAX_EVENT_STREAMS = 32;
/** Bursts of changes (nodes joining together) become one event; the page reloads at most this often. */
export const EVENT_DEBOUNCE_MS = 250;
/** A comment line this often keeps proxies and NAT mappings from closing a quiet stream, and ends a stream whose session ended. */
export const EVENT_KEEPALIVE_MS = 25_000;
/** An event is ~25 bytes: a stream with this much unsent has stopped reading (a hung tab) and is cut rather than buffered. */
export const EVENT_STREAM_MAX_UNSENT_BYTES = 64 * 1024;

interface Stream {
  res: ServerResponse;
  alive: () => boolean;
}

export class EventHub {
  private readonly streams = new Set<Stream>();
  private timer: NodeJS.Timeout | null = null;
  private readonly keepalive: NodeJS.Timeout;

  constructor(private readonly o: { maxStreams: number; debounceMs: number; keepaliveMs: number }) {
    this.keepalive = setInterval(() => this.send(': keepalive\n\n'), o.keepaliveMs);
    this.keepalive.unref();
  }

  /** Starts a stream on `res`; false when the limit is reached (nothing written). */
  open(req: IncomingMessage, res: ServerResponse, alive: () => boolean): boolean {
    if (this.streams.size >= this.o.maxStreams) return false;
    const s: Stream = { res, alive };
    this.streams.add(s);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    // the browser reconnects after 2 s if the stream breaks; the first event makes the page load what it shows
    res.write('retry: 2000\n\nevent: changed\ndata: {}\n\n');
    const end = () => this.streams.delete(s);
    req.on('close', end);
    res.on('close', end);
    return true;
  }

  notify(): void {
    if (this.timer || this.streams.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.send('event: changed\ndata: {}\n\n');
    }, this.o.debounceMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    clearInterval(this.keepalive);
    for (const s of this.streams) s.res.destroy();
    this.streams.clear();
  }

  get size(): number {
    return this.streams.size;
  }

  private send(text: string): void {
    for (const s of this.streams) {
      if (!s.alive()) {
        this.streams.delete(s);
        s.res.end();
        continue;
      }
      if (s.res.writableLength > EVENT_STREAM_MAX_UNSENT_BYTES) {
        this.streams.delete(s);
        s.res.destroy();
        continue;
      }
      s.res.write(text);
    }
  }
}
