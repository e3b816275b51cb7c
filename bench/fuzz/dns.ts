// The node's resolver (src/dns/server.ts, `answer()`, the core both its UDP and
// TCP listeners call): every datagram on the mesh interface reaches it. Inputs:
// valid queries (mesh names in any case, reverse names, other names, random
// types, with and without EDNS0, random header bits), their byte mutations,
// odd messages built with dns-packet (several questions, responses, other
// opcodes and classes, EDNS versions, several OPTs) and random bytes; from an
// allowed source or a refused one, over UDP or TCP. Checked: answer() never
// throws; a reply decodes, is a response with the query's ID, fits 512 bytes
// (no OPT) or 1232 (OPT) over UDP; a refused source never gets a record; a
// valid query for a mesh name gets its address.
import * as dnsPacket from 'dns-packet';
import { DnsServer } from '../../src/dns/server.js';
import { buildZone } from '../../src/dns/zone.js';
import type { NetworkMap, NodeView } from '../../src/netmap/types.js';
import { check, fuzzLoop, type FuzzTarget } from './harness.js';
import { mutateBytes, randomBytes } from './mutate.js';
import type { Rng } from './rng.js';

const SUFFIX = 'mesh.internal';
const NODES = 50;
const REFUSED_SOURCE = '192.0.2.66';
// ANY and HTTPS are valid on the wire; dns-packet's types list lacks them
const TYPES = ['A', 'AAAA', 'PTR', 'TXT', 'MX', 'SOA', 'ANY', 'SRV', 'CNAME', 'HTTPS', 'NS', 'UNKNOWN_999'] as unknown as dnsPacket.RecordType[];

function nodeView(i: number): NodeView {
  return {
    id: i,
    name: `host${i}`,
    nodeKey: `k${i}`,
    discoKey: `d${i}`,
    addresses: [`100.64.0.${i}`, `fd7a:115c:a1e0::${i.toString(16)}`],
    allowedIps: [],
    endpoints: [],
    homeRelay: null,
    online: i % 3 !== 0,
    lastSeen: null,
    os: 'linux',
    version: '1',
    keyExpiry: null,
    ephemeral: false,
  };
}

function testMap(): NetworkMap {
  const [self, ...peers] = Array.from({ length: NODES }, (_, i) => nodeView(i + 1));
  return {
    self: self!,
    peers,
    ipv4Prefix: '100.64.0.0/10',
    ipv6Prefix: 'fd7a:115c:a1e0::/48',
    relays: [],
    dns: {
      suffix: SUFFIX,
      resolvers: ['100.100.100.100'],
      routes: [],
      records: Array.from({ length: 40 }, (_, i) => ({ name: 'many.home.arpa', type: 'A' as const, value: `10.0.0.${i}` })),
    },
  };
}

function randomCase(r: Rng, s: string): string {
  return [...s].map((c) => (r.bool() ? c.toUpperCase() : c)).join('');
}

function randomName(r: Rng): { name: string; mesh: number | null } {
  const k = r.int(6);
  if (k <= 1) {
    const i = r.range(1, NODES);
    return { name: randomCase(r, `host${i}.${SUFFIX}`), mesh: i };
  }
  if (k === 2) return { name: `${r.int(256)}.${r.int(256)}.64.100.in-addr.arpa`, mesh: null };
  if (k === 3) return { name: r.pick(['many.home.arpa', SUFFIX, `x.y.${SUFFIX}`, '.', 'in-addr.arpa']), mesh: null };
  if (k === 4) return { name: `${r.bytes(r.range(1, 20)).toString('hex')}.${SUFFIX}`, mesh: null };
  return { name: `${r.bytes(r.range(1, 8)).toString('base64url')}.example`, mesh: null };
}

function opt(r: Rng): dnsPacket.OptAnswer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: r.pick([0, 512, 1232, 4096, 65535, r.int(65536)]),
    extendedRcode: r.chance(0.9) ? 0 : r.int(256),
    ednsVersion: r.chance(0.9) ? 0 : r.int(256),
    flags: r.bool() ? dnsPacket.DNSSEC_OK : 0,
    flag_do: false,
    options: r.chance(0.2) ? [{ code: 'PADDING', length: r.int(64) } as unknown as dnsPacket.PacketOpt] : [],
  };
}

function validQuery(r: Rng): { packet: dnsPacket.Packet; mesh: number | null; type: dnsPacket.RecordType } {
  const n = randomName(r);
  const type = n.mesh !== null && r.chance(0.6) ? 'A' : r.pick(TYPES);
  return {
    packet: {
      type: 'query',
      id: r.int(65536),
      flags: r.pick([0, dnsPacket.RECURSION_DESIRED, dnsPacket.CHECKING_DISABLED | dnsPacket.RECURSION_DESIRED]),
      questions: [{ type, class: 'IN', name: n.name }],
      additionals: r.bool() ? [opt(r)] : [],
    },
    mesh: n.mesh,
    type,
  };
}

function oddQuery(r: Rng): dnsPacket.Packet {
  const questions = Array.from({ length: r.pick([0, 2, 3]) }, () => ({ type: r.pick(TYPES), name: randomName(r).name }));
  return {
    type: r.bool() ? 'response' : 'query',
    id: r.int(65536),
    flags: (r.int(16) << 11) | r.int(16),
    questions: questions.length ? questions : r.bool() ? [] : [{ type: 'A', class: r.pick(['CH', 'HS', 'ANY'] as const), name: 'version.bind' }],
    answers: r.chance(0.2) ? [{ type: 'A', name: 'x', data: '1.2.3.4' }] : [],
    additionals: Array.from({ length: r.int(3) }, () => opt(r)),
  };
}

const target: FuzzTarget = {
  name: 'dns',
  kind: 'pure',
  description: 'DnsServer.answer: never throws; replies decode, keep the ID, fit the UDP size; refused sources get no records; mesh names answer',
  run: async (rng, iterations, onProgress) => {
    const server = new DnsServer({
      upstreams: () => [],
      allowSource: (ip) => ip !== REFUSED_SOURCE,
      sourceRate: { perSecond: 1e9, burst: 1e9, maxKeys: 16 },
    });
    server.setZone(buildZone(testMap()));
    return fuzzLoop(rng, iterations, onProgress, async (r, ctx) => {
      const kind = r.int(8);
      const valid = validQuery(r);
      let wire: Buffer;
      if (kind <= 2) wire = dnsPacket.encode(valid.packet);
      else if (kind <= 5) wire = mutateBytes(r, dnsPacket.encode(r.bool() ? valid.packet : oddQuery(r)), dnsPacket.encode(validQuery(r).packet));
      else if (kind === 6) wire = dnsPacket.encode(oddQuery(r));
      else wire = randomBytes(r, 600);
      const source = r.chance(0.1) ? REFUSED_SOURCE : r.pick(['127.0.0.1', '100.64.0.7', '::ffff:100.64.0.8', 'fd7a:115c:a1e0::9']);
      const transport = r.chance(0.8) ? 'udp' : 'tcp';
      ctx.input = { wire, source, transport };
      const out = await server.answer(wire, source, transport);
      if (!out) {
        check(kind > 2, 'a valid query got no reply');
        return 'rejected';
      }
      const reply = dnsPacket.decode(out);
      check(reply.type === 'response', 'the reply is not a response');
      check(reply.id === wire.readUInt16BE(0), 'the reply has another ID');
      let hadOpt = false;
      try {
        hadOpt = (dnsPacket.decode(wire).additionals ?? []).some((a) => a.type === 'OPT');
      } catch {
        check(false, 'replied to a message that does not decode');
      }
      if (transport === 'udp') check(out.length <= (hadOpt ? 1232 : 512), `a ${out.length}-byte UDP reply`);
      if (source === REFUSED_SOURCE) check((reply.answers ?? []).length === 0 && (reply.flags! & 0xf) === 5, 'a refused source got an answer');
      const ednsOk = !(valid.packet.additionals ?? []).some((a) => (a as dnsPacket.OptAnswer).ednsVersion !== 0);
      if (kind <= 2 && source !== REFUSED_SOURCE && valid.mesh !== null && valid.type === 'A' && ednsOk) {
        const a = (reply.answers ?? []).map((x) => (x as { data: string }).data);
        check(a.length === 1 && a[0] === `100.64.0.${valid.mesh}`, `mesh name host${valid.mesh} answered ${JSON.stringify(a)}`);
      }
      return 'accepted';
    });
  },
};
export default target;
