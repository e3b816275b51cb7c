// One DNS exchange with a server, over UDP or TCP, as both the forwarder and
// `meshctl dns query` make it. UDP: a fresh socket per query, bound to a port
// the kernel picks at random and connected to the server, so the kernel drops
// datagrams from any other address or port and an ICMP unreachable fails the
// try at once; the reply must carry the query's random ID and echo its
// question, else it is ignored (an off-path spoofer has to guess 16 bits of ID
// and about 15 of port). TCP: two-byte length framing (RFC 7766) through
// dns-packet's streamEncode; the reply's length prefix bounds what is read.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { randomInt } from 'node:crypto';
import * as dnsPacket from 'dns-packet';
import type { IpEndpoint } from '../util/netaddr.js';

/** Largest reply read over TCP (the length prefix cannot say more). */
export const MAX_TCP_MESSAGE_BYTES = 65_535;

export type ExchangeResult =
  | { ok: true; packet: dnsPacket.DecodedPacket; bytes: number }
  | { ok: false; reason: 'timeout' | 'error' | 'malformed'; message: string };

/** True when `reply` answers `query`: a response with its ID and its one question (name compared without case). */
export function repliesTo(reply: dnsPacket.DecodedPacket, query: dnsPacket.Packet): boolean {
  const q = query.questions?.[0];
  const r = reply.questions?.[0];
  return (
    reply.type === 'response' &&
    reply.id === query.id &&
    reply.questions?.length === 1 &&
    !!q &&
    !!r &&
    r.type === q.type &&
    (r.class ?? 'IN') === (q.class ?? 'IN') &&
    r.name.toLowerCase() === q.name.toLowerCase()
  );
}

/** A fresh random query ID. */
export function randomId(): number {
  return randomInt(0, 65_536);
}

/** One query over UDP; replies from elsewhere or not matching the query are ignored until `timeoutMs`. */
export function exchangeUdp(server: IpEndpoint, query: dnsPacket.Packet, timeoutMs: number): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    const sock = createSocket(server.address.family === 6 ? 'udp6' : 'udp4');
    let done = false;
    const finish = (r: ExchangeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout', message: `no answer from ${server.text} within ${timeoutMs} ms` }), timeoutMs);
    sock.on('error', (err) => finish({ ok: false, reason: 'error', message: `${server.text}: ${err.message}` }));
    sock.on('message', (msg, rinfo) => {
      // connect() already filters by source; checked again so a kernel without it cannot be fooled
      if (rinfo.port !== server.port || rinfo.address !== server.address.text) return;
      let reply: dnsPacket.DecodedPacket;
      try {
        reply = dnsPacket.decode(msg);
      } catch {
        return;
      }
      if (repliesTo(reply, query)) finish({ ok: true, packet: reply, bytes: msg.length });
    });
    let wire: Buffer;
    try {
      wire = dnsPacket.encode(query);
    } catch (err) {
      finish({ ok: false, reason: 'malformed', message: `query does not encode: ${(err as Error).message}` });
      return;
    }
    sock.connect(server.port, server.address.text, () => {
      if (done) return;
      sock.send(wire, (err) => {
        if (err) finish({ ok: false, reason: 'error', message: `${server.text}: ${err.message}` });
      });
    });
  });
}

/** One query over TCP: connect, send the framed query, read one framed reply, close. */
export function exchangeTcp(server: IpEndpoint, query: dnsPacket.Packet, timeoutMs: number): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    let done = false;
    const chunks: Buffer[] = [];
    let have = 0;
    const sock = connect({ host: server.address.text, port: server.port });
    const finish = (r: ExchangeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => finish({ ok: false, reason: 'timeout', message: `no answer from ${server.text} over TCP within ${timeoutMs} ms` }),
      timeoutMs,
    );
    sock.on('error', (err) => finish({ ok: false, reason: 'error', message: `${server.text} (TCP): ${err.message}` }));
    sock.on('close', () => finish({ ok: false, reason: 'error', message: `${server.text} closed the TCP connection before answering` }));
    sock.on('connect', () => {
      try {
        sock.write(dnsPacket.streamEncode(query));
      } catch (err) {
        finish({ ok: false, reason: 'malformed', message: `query does not encode: ${(err as Error).message}` });
      }
    });
    sock.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have > MAX_TCP_MESSAGE_BYTES + 2) return finish({ ok: false, reason: 'malformed', message: `${server.text} sent more than one reply over TCP` });
      const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (buf.length < 2) return;
      let reply: dnsPacket.Packet | null;
      try {
        reply = dnsPacket.streamDecode(buf);
      } catch (err) {
        return finish({ ok: false, reason: 'malformed', message: `${server.text} sent a malformed reply over TCP: ${(err as Error).message}` });
      }
      if (!reply) return;
      const packet = reply as dnsPacket.DecodedPacket;
      if (!repliesTo(packet, query)) return finish({ ok: false, reason: 'malformed', message: `${server.text} answered another question over TCP` });
      finish({ ok: true, packet, bytes: have - 2 });
    });
  });
}
