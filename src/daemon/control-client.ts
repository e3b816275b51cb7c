// The node's side of the control protocol: seals requests with the node key,
// trusts the server through the system CAs, a pinned certificate (--control-ca)
// or a pinned public key (the SHA-256 of its SubjectPublicKeyInfo, from a join
// string), and turns every failure into one line that names the URL and the cause.
import { randomBytes, X509Certificate } from 'node:crypto';
import { Agent, request, type RequestOptions } from 'node:https';
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import { boxKey, sealBox } from '../crypto/box.js';
import { keyFromText, keyToText } from '../crypto/keys.js';
import { publicKeyOf } from '../crypto/x25519.js';
import { PATHS, type ErrorBody, type SealedOp } from '../control/protocol.js';
import type { MapDelta, MapLine } from '../netmap/types.js';
import { ApiError } from '../localapi/types.js';
import { MapParseError, parseMapLine } from '../netmap/parse.js';
import { MapDeltaError, NetmapState } from '../netmap/delta.js';
import { terminalSafe } from '../util/text.js';
import { connectMarkedTls, markedConnection } from '../util/marked-socket.js';
import { certPin } from '../crypto/spki-pin.js';
import { ServerClock } from './server-clock.js';

const TLS_CAUSES: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its certificate is self-signed and not trusted (pass --control-ca with the output of `meshctl control ca`)',
  SELF_SIGNED_CERT_IN_CHAIN: 'its certificate chain is not trusted (pass --control-ca)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its certificate is not trusted (pass --control-ca)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'its certificate is not trusted (pass --control-ca)',
  CERT_HAS_EXPIRED: 'its certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its certificate is for another name',
};
const NET_CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is `meshctl control serve` running there?)',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EPROTO: 'TLS handshake failed (is it an HTTPS server?)',
};

export function describeNetError(url: string, err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  return `cannot reach control server ${url}: ${TLS_CAUSES[code] ?? NET_CAUSES[code] ?? err.message}`;
}

/** Longest answer to a single request (key, register, endpoints, logout, errors): all are a few KiB at most. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * Longest map stream line taken in: a map of MAX_PEERS (10,000) peers is ~7 MB of JSON, so
 * 16 MiB leaves room while a server that never ends a line cannot make the daemon buffer without end.
 */
export const MAX_MAP_LINE_BYTES = 16 * 1024 * 1024;

/** The cause of a refused line is logged cut to this many characters. */
const MAX_LOGGED_CHARS = 512;

type CreateConnection = NonNullable<RequestOptions['createConnection']>;

/**
 * A marked TLS connection that is handed to the request only once the handshake is done and the
 * server's leaf certificate carries the pinned public key, so not one byte of a request reaches
 * a server that fails the pin. The pin is the whole trust: the key is what a CA would vouch for,
 * so no CA is consulted (a self-signed certificate is fine) and the certificate's names and
 * dates are not checked (the URL may use any name or address that reaches the server).
 * TLS itself proves the server holds the private key of the pinned public key.
 */
export function pinnedConnection(host: string, port: number, pin: string): CreateConnection {
  return (_opts, cb) => {
    connectMarkedTls({ host, port, rejectUnauthorized: false }).then(
      (s) => {
        const fail = (err: Error): void => {
          s.destroy();
          cb(err, undefined as never);
        };
        s.once('error', fail);
        s.once('secureConnect', () => {
          s.off('error', fail);
          const raw = s.getPeerCertificate()?.raw;
          let got = 'no certificate';
          try {
            if (raw) got = certPin(raw);
          } catch {
            got = 'an unreadable certificate';
          }
          if (got === pin) return cb(null, s);
          fail(
            Object.assign(
              new Error(
                `its public key is not the pinned one: expected ${pin}, got ${got}; ` +
                  'if the server got a new key, get a new join string from `meshctl control authkey create --join`, else the address reaches another server',
              ),
              { code: 'ERR_PIN_MISMATCH' },
            ),
          );
        });
      },
      (err: Error) => cb(err, undefined as never),
    );
    return undefined;
  };
}

export interface MapStreamOptions {
  /** gets `map from control refused: FIELD: CAUSE` for each line the parser refuses */
  onRefused?: (msg: string) => void;
  /** longest line taken in (default MAX_MAP_LINE_BYTES) */
  maxLineBytes?: number;
  /** ask control for deltas after the first whole map (default true); false: every line is a whole map */
  deltas?: boolean;
  /**
   * Gets the node's copy of the map after each whole map or delta, with the
   * line's size in bytes, instead of `onLine` getting the whole map: for a
   * reader that looks at a few peers, at the cost of the delta only. After a delta it also gets the delta (already
   * applied to the copy): what changed, for a reader that keeps its own state in step.
   */
  onState?: (state: NetmapState, bytes: number, delta?: MapDelta) => void;
}

/**
 * Control URLs a node keeps at most: the replicas of one network behind their
 * own names (a handful per region); bounds state.json and each failover round.
 */
export const MAX_LOGIN_SERVERS = 8;
/**
 * TCP keepalive on a map stream after this much time with nothing received (rounded down to whole seconds by the OS).
 * Control sends a line every 3 s (MAP_KEEPALIVE_MS) and closes a stream whose data goes unacknowledged for 7 s
 * (STREAM_USER_TIMEOUT_MS); a probe 2 s into a silence reaches control while it still retransmits, so a NAT mapping
 * the router dropped (a reboot, a flushed table) is made again from the node's side and the stream lives on.
 */
export const MAP_STREAM_KEEPALIVE_IDLE_MS = 2000;

/**
 * A connection to control that carried a request is kept this long for the next one (an endpoint update,
 * a map stream after the key), so a node's requests in a burst share one TLS handshake. Control closes a
 * kept connection after 10 s idle (CONNECTION_IDLE_MS) and announces it in Keep-Alive; the client lets go
 * first, so a request is rarely sent on a connection control is closing (and is sent again when it is).
 */
export const CONTROL_IDLE_CONNECTION_MS = 4000;
/** Idle connections kept per control URL: a node's requests come one or two at a time. */
const MAX_IDLE_CONNECTIONS = 2;

/**
 * Reconnect spread after control ends a map stream. A control restart or a dead replica ends every stream at once, and
 * each node needs a whole map on its new stream: control's work for that is nodes × peers. Each node holds its next
 * stream back a random time in a window that grows with the network it last saw, MAP_RECONNECT_SPREAD_MS_PER_PEER per
 * peer (1,000 nodes: within 1 s; a small network: at once), at most MAP_RECONNECT_SPREAD_MAX_MS, so the storm is spread
 * over seconds instead of arriving in the same few hundred ms; a failover still lands within the daemon's backoff plus
 * that window.
 */
export const MAP_RECONNECT_SPREAD_MS_PER_PEER = 1;
export const MAP_RECONNECT_SPREAD_MAX_MS = 5000;

/** The window a node of `peers` peers spreads its reconnect over. */
export const mapReconnectWindowMs = (peers: number): number => Math.min(MAP_RECONNECT_SPREAD_MAX_MS, peers * MAP_RECONNECT_SPREAD_MS_PER_PEER);

/** A request that never got an answer (connection refused, reset, timed out): the next replica may take it. */
const isUnanswered = (err: unknown): boolean => (err as { unanswered?: boolean }).unanswered === true;

export interface MapStream {
  /**
   * Resolves when the stream ends, with the server's reason when it said one, and `spreadMs`: how long this client
   * holds the next openMap back (0 when the caller closed the stream or the client ended it itself); a caller that
   * reconnects with a new ControlClient waits that long itself.
   */
  done: Promise<{ gone?: 'NODE_UNKNOWN' | 'NODE_EXPIRED'; error?: Error; spreadMs: number }>;
  close(): void;
}

export interface ControlClientOptions {
  /** the node's wall clock (tests: one set off by an hour) */
  wallNow?: () => number;
  /** gets one line when the offset to the server's clock changes */
  log?: (msg: string) => void;
}

/**
 * A node's client of its control server. Given several URLs (replicas of one
 * network, sharing its control key and certificate), a request that gets no
 * answer from one (refused, reset, timed out) goes to the next, and the one
 * that answered is used from then on; after a map stream ends, the next
 * stream starts at the next replica, so a replica that died is not waited on.
 */
export class ControlClient {
  private controlKey: Buffer | null = null;
  /** the box key shared with the control key above: one X25519 per control key, not one per request */
  private boxKey: Uint8Array | null = null;
  /**
   * The TLS settings of every connection to control, made once: a trust store built from the CA text and
   * the pinned certificate parsed for each connection cost more than the handshake's own crypto.
   */
  private tls: { secureContext: SecureContext; checkServerIdentity?: RequestOptions['checkServerIdentity'] } | null = null;
  private readonly nodePublic: Buffer;
  private readonly bases: URL[];
  /** the replica used now (index into urls) */
  private current = 0;
  /** each replica's keep-alive pool (made on first use) */
  private readonly agents: (Agent | undefined)[] = [];
  readonly urls: readonly string[];
  /** the server's clock as learnt from its answers: what sealed requests are stamped with (server-clock.ts) */
  readonly serverClock: ServerClock;
  private readonly log: (msg: string) => void;
  /** the next map stream opens no earlier than this (performance.now()): the spread after control ended the last one */
  private nextStreamAtMs = 0;
  /** peers in the last map any stream brought: the size of the network, for the spread (kept across streams) */
  private peersSeen = 0;

  constructor(
    url: string | readonly string[],
    private readonly caPem: string | null,
    private readonly nodePrivate: Buffer,
    /** `sha256//BASE64` of the server's public key: when set it is the only trust (no CA, no host name check) */
    private readonly pin: string | null = null,
    opts: ControlClientOptions = {},
  ) {
    this.serverClock = new ServerClock(opts.wallNow);
    this.log = opts.log ?? (() => {});
    this.urls = typeof url === 'string' ? [url] : [...url];
    if (this.urls.length === 0) throw new ApiError('BAD_REQUEST', 'no login server: pass --login-server https://HOST:PORT');
    if (this.urls.length > MAX_LOGIN_SERVERS) throw new ApiError('BAD_REQUEST', `at most ${MAX_LOGIN_SERVERS} login servers (${this.urls.length} given)`);
    this.bases = this.urls.map((u) => {
      const b = new URL(u);
      if (b.protocol !== 'https:') throw new ApiError('BAD_REQUEST', `login server ${u} must be an https:// URL`);
      return b;
    });
    this.nodePublic = publicKeyOf(nodePrivate);
  }

  /** The control URL in use now. */
  get url(): string {
    return this.urls[this.current]!;
  }

  /**
   * Every connection to control carries meshctl's fwmark (util/marked-socket.ts), so an exit
   * node's default route never captures it; the TLS options are applied to that socket.
   */
  private connection(base: URL): CreateConnection {
    const host = base.hostname.replace(/^\[|\]$/g, '');
    const port = Number(base.port || 443);
    if (this.pin) return pinnedConnection(host, port, this.pin);
    return markedConnection(host, port, this.tlsOptions());
  }

  /**
   * Closes the idle kept connections to every replica. After the node's addresses or its NAT changed, a kept
   * connection may be bound to an address that is gone or to a mapping the router forgot: a request or a new
   * map stream sent on it would wait out its timeout instead of going out on a fresh connection at once.
   * Connections carrying a request (the map stream) are left to their owners.
   */
  dropKeptConnections(): number {
    let n = 0;
    for (const a of this.agents) {
      if (!a) continue;
      for (const list of Object.values(a.freeSockets)) {
        for (const s of list ?? []) {
          s.destroy();
          n++;
        }
      }
    }
    return n;
  }

  /** The keep-alive pool of replica `i`: its connections are made by `connection` (marked, pinned or CA-checked). */
  private agent(i: number): Agent {
    let a = this.agents[i];
    if (!a) {
      a = new Agent({ keepAlive: true, maxFreeSockets: MAX_IDLE_CONNECTIONS, timeout: CONTROL_IDLE_CONNECTION_MS, scheduling: 'lifo' });
      const connect = this.connection(this.bases[i]!);
      a.createConnection = ((opts: RequestOptions, cb: Parameters<CreateConnection>[1]) => connect(opts, cb)) as Agent['createConnection'];
      this.agents[i] = a;
    }
    return a;
  }

  private tlsOptions(): { secureContext: SecureContext; checkServerIdentity?: RequestOptions['checkServerIdentity'] } {
    if (this.tls) return this.tls;
    if (!this.caPem) return (this.tls = { secureContext: createSecureContext() });
    const pinned = new X509Certificate(this.caPem);
    this.tls = {
      secureContext: createSecureContext({ ca: this.caPem }),
      // A pinned self-signed certificate identifies the server better than a
      // host name does, so it is accepted under whatever name the URL uses.
      checkServerIdentity: (host: string, cert: PeerCertificate) => (cert.raw && pinned.raw.equals(cert.raw) ? undefined : checkServerIdentity(host, cert)),
    };
    return this.tls;
  }

  /**
   * Sends to the replica in use, then (when it gives no answer) to each other
   * one in turn; `body` is made again for each (a sealed body gets a fresh nonce,
   * so one that reached a replica whose answer was lost is not refused as a replay).
   */
  private async send(
    method: string,
    path: string,
    body: () => unknown,
    timeoutMs: number,
    onResponse?: (res: import('node:http').IncomingMessage) => void,
  ): Promise<unknown> {
    const n = this.urls.length;
    let start: number | null = null;
    let retriedKept = false;
    for (let k = 0; ; k++) {
      const b = await body();
      // read after the first body: sealing it may have fetched the control key, failing over to a live replica already
      start ??= this.current;
      const i = (start + k) % n;
      try {
        const out = await this.sendTo(i, method, path, b, timeoutMs, onResponse);
        this.current = i;
        return out;
      } catch (err) {
        // a kept connection control closed as the request went out: once more, on a new connection, to the same replica
        if ((err as { keptConnectionLost?: boolean }).keptConnectionLost && !retriedKept) {
          retriedKept = true;
          k--;
          continue;
        }
        if (!isUnanswered(err) || k + 1 >= n) throw err;
      }
    }
  }

  private sendTo(
    i: number,
    method: string,
    path: string,
    body: unknown,
    timeoutMs: number,
    onResponse?: (res: import('node:http').IncomingMessage) => void,
  ): Promise<unknown> {
    const startedMs = performance.now();
    const base = this.bases[i]!;
    const url = this.urls[i]!;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: base.hostname.replace(/^\[|\]$/g, ''),
          port: base.port || 443,
          method,
          path,
          // a map stream keeps its connection to itself: it goes back to no pool when it ends
          headers: onResponse ? { 'content-type': 'application/json', connection: 'close' } : { 'content-type': 'application/json' },
          timeout: timeoutMs,
          agent: this.agent(i),
        },
        (res) => {
          if (this.serverClock.observe(res.headers.date, performance.now() - startedMs)) {
            const off = this.serverClock.offsetMs;
            this.log(
              off === 0
                ? `this node's clock agrees with control server ${url} again: requests stamped with it`
                : `this node's clock is ${Math.round(Math.abs(off) / 1000)} s ${off > 0 ? 'behind' : 'ahead of'} control server ${url}'s: requests stamped with the server's time`,
            );
          }
          if (res.statusCode === 200 && onResponse) {
            onResponse(res);
            return resolve(undefined);
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy();
              return reject(new ApiError('UNREACHABLE', `control server ${url} sent an answer longer than ${MAX_RESPONSE_BYTES} bytes: refused`));
            }
            chunks.push(c);
          });
          res.on('end', () => {
            let parsed: unknown = null;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              return reject(new ApiError('UNREACHABLE', `control server ${url} answered ${res.statusCode} with non-JSON: is it a meshctl control server?`));
            }
            if (res.statusCode === 200) return resolve(parsed);
            const e = (parsed as Partial<ErrorBody>).error;
            const code = e?.code ?? 'INTERNAL';
            const apiCode =
              code.startsWith('AUTHKEY') || code === 'NODE_EXPIRED' || code === 'NODE_UNKNOWN' ? 'AUTH' : code === 'BAD_REQUEST' ? 'BAD_REQUEST' : 'FAILURE';
            const err = new ApiError(apiCode, `control server ${url}: ${e?.message ?? `HTTP ${res.statusCode}`}`);
            (err as ApiError & { controlCode?: string }).controlCode = code;
            reject(err);
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(
          Object.assign(new ApiError(err.code === 'ETIMEDOUT' ? 'TIMEOUT' : 'UNREACHABLE', describeNetError(url, err)), {
            unanswered: true,
            keptConnectionLost: req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE'),
          }),
        ),
      );
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  private async key(timeoutMs: number): Promise<Buffer> {
    if (this.controlKey) return this.controlKey;
    const r = (await this.send('GET', PATHS.key, () => undefined, timeoutMs)) as { publicKey?: string };
    const k = keyFromText(r.publicKey);
    if (!k) throw new ApiError('UNREACHABLE', `control server ${this.url} sent no usable control key: is it a meshctl control server?`);
    this.controlKey = k;
    this.boxKey = null;
    return k;
  }

  private async sealed(op: SealedOp, body: object, timeoutMs: number): Promise<object> {
    const ck = await this.key(timeoutMs);
    this.boxKey ??= boxKey(this.nodePrivate, ck);
    const plain = JSON.stringify({ ...body, op, tsMs: this.serverClock.now(), nonce: randomBytes(12).toString('hex') });
    return { nodeKey: keyToText(this.nodePublic), box: sealBox(this.boxKey, Buffer.from(plain)).toString('base64') };
  }

  async call<T>(op: Exclude<SealedOp, 'map'>, body: object, timeoutMs: number): Promise<T> {
    return (await this.sendSealed('POST', PATHS[op], op, body, timeoutMs)) as T;
  }

  /**
   * Seals and sends one request (to the replicas in turn, each with a freshly sealed body). A request refused as
   * stale whose answer taught a new clock offset (this node's clock was stepped since the last answer) is sealed
   * again with the corrected time and sent once more.
   */
  private async sendSealed(
    method: string,
    path: string,
    op: SealedOp,
    body: object,
    timeoutMs: number,
    onResponse?: (res: import('node:http').IncomingMessage) => void,
  ): Promise<unknown> {
    const offset = this.serverClock.offsetMs;
    const seal = (): Promise<object> => this.sealed(op, body, timeoutMs);
    try {
      return await this.send(method, path, seal, timeoutMs, onResponse);
    } catch (err) {
      if ((err as { controlCode?: string }).controlCode !== 'STALE_REQUEST' || this.serverClock.offsetMs === offset) throw err;
      return await this.send(method, path, seal, timeoutMs, onResponse);
    }
  }

  /**
   * Opens the long-lived map stream; `onLine` gets each map or keepalive as it
   * arrives, already checked by the strict parser (netmap/parse.ts). A line that
   * fails the parser is refused whole: `onRefused` gets one line naming the
   * field, and the stream goes on (the node keeps its previous map). A line of
   * a type this node does not know is ignored. A line longer than
   * `maxLineBytes` ends the stream with an error instead of being buffered.
   * With deltas (the default) the client keeps the node's copy of the map and
   * applies each delta to it, and `onLine` gets the whole map that results; a
   * delta that does not fit the copy (a gap in the state numbers, a patch of a
   * peer it does not hold) or that the parser refuses ends the stream with an
   * error after one `onRefused` line, so the caller's reconnect brings a whole map.
   */
  async openMap(body: object, onLine: (l: MapLine) => void, idleTimeoutMs: number, opts: MapStreamOptions = {}): Promise<MapStream> {
    // control ended the last stream: this one waits out its place in the spread (MAP_RECONNECT_SPREAD_MS_PER_PEER)
    const hold = this.nextStreamAtMs - performance.now();
    if (hold > 0) await new Promise((r) => setTimeout(r, hold));
    const maxLine = opts.maxLineBytes ?? MAX_MAP_LINE_BYTES;
    const onRefused = opts.onRefused ?? (() => {});
    const deltas = opts.deltas !== false;
    const state = new NetmapState();
    let response: import('node:http').IncomingMessage | null = null;
    const request = deltas ? { ...body, deltas: true, filterPatches: true } : body;
    await this.sendSealed('POST', PATHS.map, 'map', request, idleTimeoutMs, (res) => (response = res));
    const res = response!;
    const url = this.url;
    const streamed = this.current;
    let gone: 'NODE_UNKNOWN' | 'NODE_EXPIRED' | undefined;
    /** the caller closed the stream, or this client ended it over a bad line: no storm, nothing to spread */
    let endedHere = false;
    /** A delta that cannot be applied: the copy is stale, so the stream ends and the reconnect brings a whole map. */
    const resync = (why: string): void => {
      onRefused(`map delta from control refused: ${terminalSafe(why, MAX_LOGGED_CHARS)}; asking for a whole map`);
      endedHere = true;
      res.destroy(new Error(`map delta from control refused (${terminalSafe(why, MAX_LOGGED_CHARS)}): reconnecting for a whole map`));
    };
    const handle = (text: string, bytes: number): void => {
      if (text.trim() === '') return;
      let line: MapLine | null;
      const isDelta = deltas && text.startsWith('{"type":"delta"');
      try {
        line = parseMapLine(JSON.parse(text), deltas ? state.mesh : undefined);
      } catch (err) {
        // one log line, whatever the server put in it (JSON.parse quotes the input it choked on)
        const why = terminalSafe(err instanceof MapParseError ? err.message : `not JSON (${(err as Error).message})`, MAX_LOGGED_CHARS);
        if (isDelta) return resync(why);
        return onRefused(`map from control refused: ${why}`);
      }
      if (line === null) return;
      if (line.type === 'gone') gone = line.reason;
      else if (line.type === 'keepalive') onLine(line);
      else if (line.type === 'delta') {
        try {
          state.apply(line.delta);
        } catch (err) {
          if (err instanceof MapDeltaError || err instanceof MapParseError) return resync(err.message);
          throw err;
        }
        this.peersSeen = state.peerCount;
        if (opts.onState) opts.onState(state, bytes, line.delta);
        else onLine({ type: 'map', map: state.toMap(), seq: line.delta.seq });
      } else {
        if (deltas) state.setMap(line.map, line.seq ?? null);
        this.peersSeen = line.map.peers.length;
        if (opts.onState && deltas) opts.onState(state, bytes);
        else onLine(line);
      }
    };
    const done = new Promise<{ gone?: 'NODE_UNKNOWN' | 'NODE_EXPIRED'; error?: Error }>((resolve) => {
      // the line being assembled, as raw chunks: counted in bytes, decoded once it is whole
      let parts: Buffer[] = [];
      let size = 0;
      const tooLong = (): void => {
        parts = [];
        endedHere = true;
        res.destroy(new Error(`control server ${url} sent a map stream line longer than ${maxLine} bytes: refused`));
      };
      // the server writes a keepalive line every MAP_KEEPALIVE_MS; silence for idleTimeoutMs means a dead path
      res.socket.setTimeout(idleTimeoutMs, () => res.destroy(new Error(`no word from ${url} for ${idleTimeoutMs / 1000}s`)));
      // a node only reads on its stream: TCP keepalive makes it send when the server's lines stop, which re-opens a
      // mapping its NAT router forgot before control's TCP_USER_TIMEOUT gives up on the stream
      res.socket.setKeepAlive(true, MAP_STREAM_KEEPALIVE_IDLE_MS);
      res.on('data', (c: Buffer) => {
        let start = 0;
        let nl: number;
        while ((nl = c.indexOf(0x0a, start)) >= 0) {
          const piece = c.subarray(start, nl);
          if (size + piece.length > maxLine) return tooLong();
          parts.push(piece);
          const text = Buffer.concat(parts).toString('utf8');
          const bytes = size + piece.length + 1;
          parts = [];
          size = 0;
          start = nl + 1;
          handle(text, bytes);
          if (res.destroyed) return;
        }
        const rest = c.subarray(start);
        if (size + rest.length > maxLine) return tooLong();
        if (rest.length) {
          parts.push(rest);
          size += rest.length;
        }
      });
      res.on('end', () => resolve({ gone }));
      res.on('error', (error) => resolve({ gone, error }));
      res.on('close', () => resolve({ gone }));
    }).then((end) => {
      // the next stream starts at the next replica: one that dropped the stream (died, restarted) is not waited on first
      if (this.current === streamed && this.urls.length > 1) this.current = (streamed + 1) % this.urls.length;
      const spreadMs = endedHere || end.gone ? 0 : Math.random() * mapReconnectWindowMs(this.peersSeen);
      this.nextStreamAtMs = performance.now() + spreadMs;
      return { ...end, spreadMs };
    });
    return {
      done,
      close: () => {
        endedHere = true;
        res.destroy();
      },
    };
  }
}
