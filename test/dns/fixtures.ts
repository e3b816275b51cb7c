// Test fixtures for the resolver: network maps with mesh names, a resolver
// server on loopback, and a fake upstream resolver (dns-packet on UDP and TCP,
// one loopback port) whose answers and received queries the test controls.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { DnsConfig, NetworkMap, NodeView } from '../../src/netmap/types.js';
import { parseIpEndpoint, type IpEndpoint } from '../../src/util/netaddr.js';
import { DnsServer, type DnsServerOptions } from '../../src/dns/server.js';
import { testNodeView } from '../daemon/node-view.js';

export const SUFFIX = 'mesh.internal';

/** The mesh addresses of node `i` (1 ≤ i < 65536). */
export function meshAddresses(i: number): [string, string] {
  return [`100.64.${i >> 8}.${i & 0xff}`, `fd7a:115c:a1e0::${i.toString(16)}`];
}

/** Node `i` named `name`, with meshAddresses(i) (ids past 255 stay inside the prefix). */
export function node(i: number, name: string, o: Partial<NodeView> = {}): NodeView {
  return testNodeView(i, { name, addresses: meshAddresses(i), allowedIps: [], ...o });
}

/** Self is `self` (node 1); peers are given as [id, name] or built nodes. */
export function testMap(peers: NodeView[], dns: Partial<DnsConfig> = {}): NetworkMap {
  return {
    self: node(1, 'self'),
    peers,
    ipv4Prefix: '100.64.0.0/10',
    ipv6Prefix: 'fd7a:115c:a1e0::/48',
    relays: [],
    dns: { suffix: SUFFIX, resolvers: ['100.100.100.100', 'fd7a:115c:a1e0::53'], routes: [], records: [], ...dns },
  };
}

/** An answer to send, raw bytes to send over UDP (a malformed answer), or nothing. */
export type Handler = (q: dnsPacket.DecodedPacket, transport: 'udp' | 'tcp') => dnsPacket.Packet | Buffer | null | 'ignore';

export interface FakeUpstream {
  endpoint: IpEndpoint;
  port: number;
  queries: { packet: dnsPacket.DecodedPacket; transport: 'udp' | 'tcp' }[];
  close(): Promise<void>;
}

/** An answer to `q` with A records, for handlers. */
export function answerA(q: dnsPacket.DecodedPacket, addresses: string[], more: Partial<dnsPacket.Packet> = {}): dnsPacket.Packet {
  const name = q.questions![0]!.name;
  return {
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_AVAILABLE,
    questions: q.questions,
    answers: addresses.map((data) => ({ type: 'A', name, ttl: 300, class: 'IN', data })),
    ...more,
  };
}

/** A resolver on 127.0.0.1 (UDP and TCP, one port) answering with `handler`. */
export async function fakeUpstream(handler: Handler): Promise<FakeUpstream> {
  const queries: FakeUpstream['queries'] = [];
  for (let attempt = 0; ; attempt++) {
    const udp: UdpSocket = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    const port = udp.address().port;
    const tcp: Server = createServer((sock: Socket) => {
      let buf: Buffer = Buffer.alloc(0);
      sock.on('error', () => {});
      sock.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const q = dnsPacket.streamDecode(buf) as dnsPacket.DecodedPacket;
          buf = buf.subarray(2 + buf.readUInt16BE(0));
          queries.push({ packet: q, transport: 'tcp' });
          const r = handler(q, 'tcp');
          if (r && r !== 'ignore' && !Buffer.isBuffer(r)) sock.write(dnsPacket.streamEncode(r));
        }
      });
    });
    const ok = await new Promise<boolean>((r) => {
      tcp.once('error', () => r(false));
      tcp.listen(port, '127.0.0.1', () => r(true));
    });
    if (!ok) {
      udp.close();
      if (attempt > 8) throw new Error('no free port pair for the fake upstream');
      continue;
    }
    udp.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      queries.push({ packet: q, transport: 'udp' });
      const r = handler(q, 'udp');
      if (r && r !== 'ignore') udp.send(Buffer.isBuffer(r) ? r : dnsPacket.encode(r), rinfo.port, rinfo.address);
    });
    return {
      endpoint: parseIpEndpoint(`127.0.0.1:${port}`),
      port,
      queries,
      close: async () => {
        await new Promise<void>((r) => udp.close(() => r()));
        await new Promise<void>((r) => tcp.close(() => r()));
      },
    };
  }
}

/** A DnsServer on 127.0.0.1 and ::1 (port 0), answering everyone unless `allowSource` says otherwise. */
export async function startServer(o: Partial<DnsServerOptions> = {}, hosts = ['127.0.0.1']): Promise<{ server: DnsServer; host: string; port: number }> {
  const server = new DnsServer({ upstreams: () => [], allowSource: () => true, ...o });
  await server.listen(hosts.map((host) => ({ host, port: 0 })));
  const a = server.addresses()[0]!;
  return { server, host: a.host, port: a.port };
}

/** Polls `cond` until true, failing after `ms`. */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A query message. */
export function queryWire(name: string, type: dnsPacket.RecordType = 'A', o: Partial<dnsPacket.Packet> = {}): Buffer {
  return dnsPacket.encode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, class: 'IN', name }], ...o });
}
