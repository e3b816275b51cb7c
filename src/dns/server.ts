// The node's resolver: answers mesh names from the zone and forwards the rest
// (forward.ts), over UDP and TCP on each listen address. Everything that
// arrives is hostile until decoded: sources the daemon does not allow get
// REFUSED (the node is no open resolver), each source has a token bucket,
// anything that does not decode as a query is dropped and counted, and every
// queue is bounded (forwards in flight, TCP connections, queries per
// connection, bytes a connection may leave unsent).
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import { KeyedTokenBuckets, type Clock, type KeyedTokenRate } from '../util/token-bucket.js';
import { PerSourceCounter, sourceKey } from '../util/per-source.js';
import { parseIp, type IpEndpoint } from '../util/netaddr.js';
import { Forwarder } from './forward.js';
import { BADVERS_EXTENDED, emptyReply, encodeWithin, opcodeOf, optsOf, RCODE, rcodeOf, replyFlags, serverOpt, udpLimit } from './message.js';
import { canonicalName, isQueryName } from './names.js';
import { MAX_TCP_MESSAGE_BYTES } from './transport.js';
import type { Zone, ZoneAnswer, ZoneSoa } from './zone.js';

/** TCP connections open at once: a stub resolver opens one per truncated answer, briefly; each holds buffers and a timer. */
export const MAX_TCP_CONNECTIONS = 64;
/** TCP connections one source (an IPv4 address or an IPv6 /64) may hold, so one client cannot take them all. */
export const MAX_TCP_CONNECTIONS_PER_SOURCE = 16;
/** A TCP connection with nothing read or written for this long is closed (RFC 7766 suggests seconds). */
export const TCP_IDLE_TIMEOUT_MS = 10_000;
/** Largest query accepted (UDP datagram or TCP message): a question is at most 259 bytes, an OPT with options a few hundred. */
export const MAX_QUERY_BYTES = 4096;
/** Queries of one TCP connection being answered at once; reading pauses past it (pipelining is allowed, not unbounded). */
export const MAX_TCP_PIPELINE = 16;
/** Reply bytes a TCP connection may leave unread before it is closed: a client that does not read loses its connection, not our memory. */
export const MAX_TCP_UNSENT_BYTES = 256 * 1024;
/**
 * Queries per source: a sustained 500/s with bursts of 1000 is far above a
 * host's real load (a browser opening pages makes tens) and keeps one looping
 * client from taking the CPU from others; 4096 sources tracked at most.
 */
export const SOURCE_QUERY_RATE: KeyedTokenRate = { perSecond: 500, burst: 1000, maxKeys: 4096 };

export interface DnsServerOptions {
  /** the host's original resolvers, asked for every name that is neither the mesh's nor a split route's */
  upstreams: () => readonly IpEndpoint[];
  /** whether a query from this source address is answered (else REFUSED) */
  allowSource: (ip: string) => boolean;
  forwardTryTimeoutMs?: number;
  forwardTotalTimeoutMs?: number;
  maxInflightForwards?: number;
  maxTcpConnections?: number;
  maxTcpConnectionsPerSource?: number;
  tcpIdleTimeoutMs?: number;
  maxTcpPipeline?: number;
  sourceRate?: KeyedTokenRate;
  clock?: Clock;
  /** one line per listener error (the daemon's log) */
  log?: (msg: string) => void;
}

export interface DnsStats {
  /** every message received */
  queries: number;
  /** answered from the zone (NOERROR with records) */
  answered: number;
  nxdomain: number;
  /** the name exists, not with the type asked */
  nodata: number;
  forwarded: number;
  servfail: number;
  refused: number;
  /** malformed, not a query, or too large: no reply */
  dropped: number;
  rateLimited: number;
  formerr: number;
  notimp: number;
  /** UDP replies cut to the question with TC=1 */
  truncated: number;
  tcpOpen: number;
  tcpRejected: number;
  forwardsInFlight: number;
}

export type DnsTransport = 'udp' | 'tcp';

export interface ListenAddress {
  host: string;
  port: number;
}

type Counter = Exclude<keyof DnsStats, 'tcpOpen' | 'forwardsInFlight'>;

/** A socket's view of a peer: IPv4-mapped IPv6 addresses as plain IPv4. */
function plainSource(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

const NAME_DATA = new Set(['CNAME', 'DNAME', 'NS', 'PTR']);
/** The fields of record data dns-packet encodes as names (MX exchange, SRV target, SOA names, RRSIG signer, NSEC next name). */
const NAME_FIELDS = ['exchange', 'target', 'mname', 'rname', 'signersName', 'nextDomain'];

const safeName = (n: unknown): boolean => typeof n === 'string' && isQueryName(canonicalName(n));

/**
 * True when every name in `p` is one a query may carry: owner names and the
 * names record data points to. dns-packet decodes a label holding a dot or
 * bytes that are not UTF-8, but encodes it back as other labels (or a broken
 * message), so such an upstream answer is not passed on.
 */
function namesSafe(p: dnsPacket.Packet): boolean {
  for (const list of [p.answers, p.authorities, p.additionals]) {
    for (const a of list ?? []) {
      if (a.type === 'OPT') continue;
      if (!safeName(a.name)) return false;
      if (NAME_DATA.has(a.type) && !safeName(a.data)) return false;
      const d = a.data as unknown as Record<string, unknown> | null;
      if (d && typeof d === 'object' && !Buffer.isBuffer(d)) for (const f of NAME_FIELDS) if (f in d && !safeName(d[f])) return false;
    }
  }
  return true;
}

function soaRecord(name: string, soa: ZoneSoa): dnsPacket.Answer {
  return { type: 'SOA', name, ttl: soa.ttl, class: 'IN', data: soa.data };
}

export class DnsServer {
  private readonly o: DnsServerOptions;
  private readonly forwarder: Forwarder;
  private readonly buckets: KeyedTokenBuckets;
  private readonly tcpPerSource: PerSourceCounter;
  private zone: Zone | null = null;
  private readonly udp: UdpSocket[] = [];
  private readonly tcp: Server[] = [];
  private readonly conns = new Set<Socket>();
  private readonly bound: { host: string; port: number; transport: DnsTransport }[] = [];
  private readonly s: Record<Counter, number> = {
    queries: 0,
    answered: 0,
    nxdomain: 0,
    nodata: 0,
    forwarded: 0,
    servfail: 0,
    refused: 0,
    dropped: 0,
    rateLimited: 0,
    formerr: 0,
    notimp: 0,
    truncated: 0,
    tcpRejected: 0,
  };

  constructor(opts: DnsServerOptions) {
    this.o = opts;
    this.forwarder = new Forwarder({
      tryTimeoutMs: opts.forwardTryTimeoutMs,
      totalTimeoutMs: opts.forwardTotalTimeoutMs,
      maxInflight: opts.maxInflightForwards,
    });
    this.buckets = new KeyedTokenBuckets(opts.sourceRate ?? SOURCE_QUERY_RATE, opts.clock);
    this.tcpPerSource = new PerSourceCounter(opts.maxTcpConnectionsPerSource ?? MAX_TCP_CONNECTIONS_PER_SOURCE);
  }

  /** The zone answered from now on; null: no mesh names, everything forwarded. */
  setZone(zone: Zone | null): void {
    this.zone = zone;
  }

  stats(): DnsStats {
    return { ...this.s, tcpOpen: this.conns.size, forwardsInFlight: this.forwarder.inflight };
  }

  /** Where the server listens (after listen(); ports as bound). */
  addresses(): { host: string; port: number; transport: DnsTransport }[] {
    return this.bound.map((b) => ({ ...b }));
  }

  /** The reply to one query as wire bytes (UDP: fitted to the client's size), or null when the query is dropped. */
  async answer(query: Buffer, source: string, transport: DnsTransport): Promise<Buffer | null> {
    const reply = await this.respond(query, source);
    if (!reply) return null;
    return this.encode(reply.packet, transport === 'udp' ? udpLimit(reply.opt) : MAX_TCP_MESSAGE_BYTES, false);
  }

  private encode(packet: dnsPacket.Packet, limit: number, framed: boolean): Buffer {
    let chosen: dnsPacket.Packet;
    try {
      const fit = encodeWithin(packet, limit);
      if (fit.truncated) this.s.truncated++;
      chosen = fit.packet;
    } catch {
      // an upstream's record dns-packet decodes but cannot encode again
      this.s.servfail++;
      chosen = emptyReply(packet, RCODE.SERVFAIL, optsOf(packet).length ? serverOpt() : null);
    }
    return framed ? dnsPacket.streamEncode(chosen) : dnsPacket.encode(chosen);
  }

  private count(c: Counter): void {
    this.s[c]++;
  }

  private async respond(query: Buffer, rawSource: string): Promise<{ packet: dnsPacket.Packet; opt: dnsPacket.OptAnswer | null } | null> {
    this.count('queries');
    const source = plainSource(rawSource);
    const allowed = this.o.allowSource(source);
    if (!this.buckets.take(sourceKey(source))) return (this.count('rateLimited'), null);
    if (query.length > MAX_QUERY_BYTES) return (this.count('dropped'), null);
    let q: dnsPacket.DecodedPacket;
    try {
      q = dnsPacket.decode(query);
    } catch {
      return (this.count('dropped'), null);
    }
    // never answer a response: two resolvers answering each other's answers would loop
    if (q.type !== 'query') return (this.count('dropped'), null);
    const opts = optsOf(q);
    const clientOpt = opts[0] ?? null;
    const opt = clientOpt ? serverOpt() : null;
    // a name dns-packet decoded but cannot encode the same (a dot or a non-ASCII byte inside a label) is not echoed
    const echo = q.questions?.length === 1 && isQueryName(canonicalName(q.questions[0]!.name)) ? q : { ...q, questions: [] };
    const fail = (rcode: number, c: Counter, o = opt) => (this.count(c), { packet: emptyReply(echo, rcode, o), opt: clientOpt });
    if (!allowed) return fail(RCODE.REFUSED, 'refused');
    if (opcodeOf(q) !== 0) return fail(RCODE.NOTIMP, 'notimp');
    if (q.questions?.length !== 1 || opts.length > 1) return fail(RCODE.FORMERR, 'formerr');
    if (clientOpt && clientOpt.ednsVersion !== 0) return fail(RCODE.NOERROR, 'formerr', serverOpt(BADVERS_EXTENDED));
    const question = q.questions[0]!;
    if (question.class !== 'IN' && question.class !== 'ANY') return fail(RCODE.NOTIMP, 'notimp');
    const name = canonicalName(question.name);
    if (!isQueryName(name)) return fail(RCODE.FORMERR, 'formerr');
    const zone = this.zone;
    const local = zone?.lookup(name, question.type) ?? null;
    if (local) return { packet: this.fromZone(q, question, local, opt), opt: clientOpt };
    return { packet: await this.forward(q, question, name, clientOpt, opt), opt: clientOpt };
  }

  private fromZone(q: dnsPacket.DecodedPacket, question: dnsPacket.Question, a: ZoneAnswer, opt: dnsPacket.OptAnswer | null): dnsPacket.Packet {
    const answers: dnsPacket.Answer[] = a.answers.map((r) => ({ type: r.type, name: question.name, ttl: r.ttl, class: 'IN', data: r.data }));
    if (a.soaIsAnswer && a.soa) answers.push(soaRecord(question.name, a.soa));
    const authorities = answers.length === 0 && a.soa ? [soaRecord(a.soa.zone, a.soa)] : [];
    const rcode = a.rcode === 'NXDOMAIN' ? RCODE.NXDOMAIN : RCODE.NOERROR;
    this.count(rcode === RCODE.NXDOMAIN ? 'nxdomain' : answers.length ? 'answered' : 'nodata');
    return {
      type: 'response',
      id: q.id,
      flags: replyFlags(q, rcode, dnsPacket.AUTHORITATIVE_ANSWER),
      questions: [question],
      answers,
      authorities,
      additionals: opt ? [opt] : [],
    };
  }

  /** The upstreams for `name` less this server's own addresses (a resolver that forwards to itself loops until the bound). */
  private serversFor(name: string): readonly IpEndpoint[] {
    const list = this.zone?.routeFor(name) ?? this.o.upstreams();
    return list.filter((e) => !this.bound.some((b) => b.port === e.port && plainSource(b.host) === e.address.text));
  }

  private async forward(
    q: dnsPacket.DecodedPacket,
    question: dnsPacket.Question,
    name: string,
    clientOpt: dnsPacket.OptAnswer | null,
    opt: dnsPacket.OptAnswer | null,
  ): Promise<dnsPacket.Packet> {
    this.count('forwarded');
    const r = await this.forwarder.forward(
      { question: { ...question, class: 'IN' }, recursionDesired: q.flag_rd, checkingDisabled: q.flag_cd, opt: clientOpt },
      this.serversFor(name),
    );
    const up = r.ok ? r.packet : null;
    // an upstream's name that would not encode back the same is not passed on
    if (!up || !namesSafe(up)) return (this.count('servfail'), emptyReply(q, RCODE.SERVFAIL, opt));
    const upOpt = optsOf(up)[0];
    const replyOpt = opt && upOpt ? { ...opt, flags: upOpt.flags & dnsPacket.DNSSEC_OK, flag_do: !!(upOpt.flags & dnsPacket.DNSSEC_OK) } : opt;
    return {
      type: 'response',
      id: q.id,
      flags: replyFlags(q, rcodeOf(up), (up.flags ?? 0) & dnsPacket.AUTHENTIC_DATA),
      questions: [question],
      answers: up.answers ?? [],
      authorities: up.authorities ?? [],
      additionals: [...(up.additionals ?? []).filter((a) => a.type !== 'OPT'), ...(replyOpt ? [replyOpt] : [])],
    };
  }

  /** Listens on UDP and TCP on each address (port 0: one free port, the same for both). */
  async listen(addrs: readonly ListenAddress[]): Promise<void> {
    for (const a of addrs) {
      const family = parseIp(a.host).family;
      for (let attempt = 0; ; attempt++) {
        const udp = await this.bindUdp(a.host, a.port, family);
        const port = (udp.address() as { port: number }).port;
        try {
          await this.listenTcp(a.host, port);
          this.udp.push(udp);
          this.bound.push({ host: a.host, port, transport: 'udp' }, { host: a.host, port, transport: 'tcp' });
          break;
        } catch (err) {
          udp.close();
          // port 0 picked a UDP port whose TCP twin is taken: pick again
          if (a.port !== 0 || attempt >= 8) throw err;
        }
      }
    }
  }

  private bindUdp(host: string, port: number, family: 4 | 6): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      const sock = createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6 });
      sock.once('error', reject);
      sock.bind({ address: host, port, exclusive: true }, () => {
        sock.off('error', reject);
        sock.on('error', (err) => this.o.log?.(`dns: UDP ${host}: ${err.message}`));
        sock.on('message', (msg, rinfo) => this.onDatagram(sock, msg, rinfo.address, rinfo.port));
        resolve(sock);
      });
    });
  }

  private onDatagram(sock: UdpSocket, msg: Buffer, address: string, port: number): void {
    this.answer(msg, address, 'udp').then(
      (wire) => {
        if (!wire || !this.udp.includes(sock)) return;
        try {
          sock.send(wire, port, address, () => {});
        } catch (err) {
          // the socket closed while the answer was on its way (a forward outlived close())
          this.o.log?.(`dns: replying to ${address}: ${(err as Error).message}`);
        }
      },
      (err) => this.o.log?.(`dns: answering ${address}: ${(err as Error).message}`),
    );
  }

  private listenTcp(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((sock) => this.onConnection(sock));
      server.once('error', reject);
      server.listen({ host, port, ipv6Only: host.includes(':'), exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.o.log?.(`dns: TCP ${host}: ${err.message}`));
        this.tcp.push(server);
        resolve();
      });
    });
  }

  private onConnection(sock: Socket): void {
    const source = plainSource(sock.remoteAddress ?? '');
    const key = sourceKey(source);
    if (this.conns.size >= (this.o.maxTcpConnections ?? MAX_TCP_CONNECTIONS) || !this.tcpPerSource.tryAdd(key)) {
      this.count('tcpRejected');
      sock.destroy();
      return;
    }
    this.conns.add(sock);
    sock.on('close', () => {
      this.conns.delete(sock);
      this.tcpPerSource.remove(key);
    });
    sock.on('error', () => sock.destroy());
    sock.setTimeout(this.o.tcpIdleTimeoutMs ?? TCP_IDLE_TIMEOUT_MS, () => sock.destroy());
    const pipeline = this.o.maxTcpPipeline ?? MAX_TCP_PIPELINE;
    let buf: Buffer = Buffer.alloc(0);
    let pending = 0;
    const drain = (): void => {
      while (buf.length >= 2 && pending < pipeline) {
        // the two-byte length prefix of RFC 1035 4.2.2 (framing, not DNS wire format)
        const len = buf.readUInt16BE(0);
        if (len < 12 || len > MAX_QUERY_BYTES) {
          this.count('queries');
          this.count('dropped');
          sock.destroy();
          return;
        }
        if (buf.length < 2 + len) return;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        pending++;
        if (pending >= pipeline) sock.pause();
        this.respond(msg, source)
          .then(
            (reply) => {
              if (!reply || sock.destroyed) return;
              sock.write(this.encode(reply.packet, MAX_TCP_MESSAGE_BYTES, true));
              if (sock.writableLength > MAX_TCP_UNSENT_BYTES) sock.destroy();
            },
            (err) => this.o.log?.(`dns: answering ${source} over TCP: ${(err as Error).message}`),
          )
          .finally(() => {
            pending--;
            if (!sock.destroyed) {
              sock.resume();
              drain();
            }
          });
      }
    };
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      drain();
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await Promise.all([
      ...this.udp.map((u) => new Promise<void>((r) => u.close(() => r()))),
      ...this.tcp.map((t) => new Promise<void>((r) => t.close(() => r()))),
    ]);
    this.udp.length = 0;
    this.tcp.length = 0;
    this.bound.length = 0;
  }
}
