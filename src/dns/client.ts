// `meshctl dns query NAME [TYPE]`: one question to a resolver (the node's own,
// usually), over UDP and again over TCP when the answer comes truncated. The
// answer is returned typed, every name and datum made safe for a terminal
// (a resolver may put any bytes in a name).
import * as dnsPacket from 'dns-packet';
import { parseIp, type IpEndpoint } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';
import { rcodeName, rcodeOf } from './message.js';
import { canonicalName, isQueryName, reverseName } from './names.js';
import { exchangeTcp, exchangeUdp, randomId } from './transport.js';

/** How long a query waits for its answer, ms: above the resolver's own 2 s forwarding bound, so its SERVFAIL arrives first. */
export const QUERY_TIMEOUT_MS = 3000;
/** EDNS0 payload size the client states: the flag day 2020 value. */
export const CLIENT_EDNS_PAYLOAD_BYTES = 1232;
/** Longest record datum shown; longer ones (a big TXT) are cut. */
export const MAX_SHOWN_DATA_CHARS = 512;

/** Record types `queryDns` asks for. */
export const QUERY_TYPES = ['A', 'AAAA', 'PTR', 'CNAME', 'MX', 'TXT', 'SRV', 'NS', 'SOA', 'CAA', 'ANY', 'HTTPS', 'SVCB', 'DS', 'DNSKEY'] as const;

export class DnsQueryError extends Error {
  override readonly name = 'DnsQueryError';
}

export interface DnsRecordView {
  name: string;
  type: string;
  ttl: number;
  /** the datum as text: an address, a name, `priority exchange`, the SOA fields… */
  data: string;
}

export interface DnsAnswer {
  rcode: string;
  authoritative: boolean;
  answers: DnsRecordView[];
  authorities: DnsRecordView[];
  /** the resolver that answered, `ip:port` */
  server: string;
  transport: 'udp' | 'tcp';
  elapsedMs: number;
}

export interface QueryOptions {
  timeoutMs?: number;
  /** ask over TCP from the start */
  tcp?: boolean;
}

function dataText(a: dnsPacket.Answer): string {
  if (a.type === 'OPT') return '';
  const d: unknown = a.data;
  let s: string;
  if (typeof d === 'string') s = d;
  else if (Buffer.isBuffer(d)) s = d.toString('hex');
  else if (Array.isArray(d)) s = d.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x))).join(' ');
  else if (d && typeof d === 'object') {
    s = Object.values(d as Record<string, unknown>)
      .map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'object' ? JSON.stringify(v) : String(v)))
      .join(' ');
  } else s = String(d);
  return terminalSafe(s, MAX_SHOWN_DATA_CHARS);
}

function view(list: dnsPacket.Answer[] | undefined): DnsRecordView[] {
  return (list ?? [])
    .filter((a) => a.type !== 'OPT')
    .map((a) => ({ name: terminalSafe(a.name), type: terminalSafe(a.type, 16), ttl: (a as { ttl?: number }).ttl ?? 0, data: dataText(a) }));
}

/** The name asked: `name` itself, or the reverse name of an IP address asked for PTR. */
function questionName(name: string, type: string): string {
  if (type === 'PTR') {
    try {
      return reverseName(parseIp(name));
    } catch {
      // a name, not an address
    }
  }
  // sent as typed (a resolver echoes the case); checked in canonical form
  if (!isQueryName(canonicalName(name)))
    throw new DnsQueryError(`${JSON.stringify(terminalSafe(name, 64))} is not a domain name: use labels of 1-63 printable characters, 253 in all`);
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** Asks `server` one question; throws DnsQueryError (one line: cause and fix) when no answer comes. */
export async function queryDns(server: { host: string; port: number }, name: string, type = 'A', opts: QueryOptions = {}): Promise<DnsAnswer> {
  const t = type.toUpperCase();
  if (!(QUERY_TYPES as readonly string[]).includes(t))
    throw new DnsQueryError(`unknown record type ${JSON.stringify(terminalSafe(type, 16))}: use one of ${QUERY_TYPES.join(', ')}`);
  let address: ReturnType<typeof parseIp>;
  try {
    address = parseIp(server.host);
  } catch {
    throw new DnsQueryError(`resolver ${JSON.stringify(terminalSafe(server.host, 64))} is not an IP address`);
  }
  const endpoint: IpEndpoint = {
    address,
    port: server.port,
    text: address.family === 6 ? `[${address.text}]:${server.port}` : `${address.text}:${server.port}`,
  };
  const timeoutMs = opts.timeoutMs ?? QUERY_TIMEOUT_MS;
  const query = (): dnsPacket.Packet => ({
    type: 'query',
    id: randomId(),
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: t as dnsPacket.RecordType, class: 'IN', name: questionName(name, t) }],
    additionals: [
      { type: 'OPT', name: '.', udpPayloadSize: CLIENT_EDNS_PAYLOAD_BYTES, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] },
    ],
  });
  const t0 = performance.now();
  let transport: 'udp' | 'tcp' = opts.tcp ? 'tcp' : 'udp';
  let r = opts.tcp ? await exchangeTcp(endpoint, query(), timeoutMs) : await exchangeUdp(endpoint, query(), timeoutMs);
  if (r.ok && r.packet.flag_tc && !opts.tcp) {
    transport = 'tcp';
    r = await exchangeTcp(endpoint, query(), Math.max(1, timeoutMs - (performance.now() - t0)));
  }
  if (!r.ok) throw new DnsQueryError(`${r.message}: is the daemon up, with DNS on (meshctl dns status)?`);
  const p = r.packet;
  return {
    rcode: rcodeName(rcodeOf(p)),
    authoritative: p.flag_aa,
    answers: view(p.answers),
    authorities: view(p.authorities),
    server: endpoint.text,
    transport,
    elapsedMs: performance.now() - t0,
  };
}
