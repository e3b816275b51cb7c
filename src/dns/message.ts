// Building DNS replies with dns-packet: response codes (the low four bits of
// the flags, where dns-packet keeps them), the EDNS0 OPT record of a reply,
// and fitting a reply into the size the client can take over UDP.
import * as dnsPacket from 'dns-packet';

/** The payload size a client without EDNS0 can take over UDP (RFC 1035). */
export const CLASSIC_UDP_PAYLOAD_BYTES = 512;
/**
 * The largest UDP reply sent whatever the client's OPT says: 1232 bytes (DNS
 * flag day 2020) fits the IPv6 minimum MTU with headers, so replies are never
 * IP-fragmented (fragments get lost and can be spoofed); bigger answers go over TCP.
 */
export const MAX_UDP_PAYLOAD_BYTES = 1232;
/** EDNS0 payload size this server states in its replies. */
export const SERVER_EDNS_PAYLOAD_BYTES = 1232;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];
/** The extended rcode BADVERS (RFC 6891): upper eight bits 1, lower four 0. */
export const BADVERS_EXTENDED = 1;

const OPCODE_MASK = 0x7800;
const RCODE_MASK = 0x000f;

export function rcodeOf(p: dnsPacket.Packet): number {
  return (p.flags ?? 0) & RCODE_MASK;
}

const NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
export function rcodeName(rcode: number): string {
  return NAMES[rcode] ?? `RCODE_${rcode}`;
}

/** The opcode of a decoded message (0 = QUERY). */
export function opcodeOf(p: dnsPacket.Packet): number {
  return ((p.flags ?? 0) & OPCODE_MASK) >> 11;
}

/** The OPT records among a message's additionals. */
export function optsOf(p: dnsPacket.Packet): dnsPacket.OptAnswer[] {
  return (p.additionals ?? []).filter((a): a is dnsPacket.OptAnswer => a.type === 'OPT');
}

/** The OPT this server puts in a reply to a query that carried one. */
export function serverOpt(extendedRcode = 0): dnsPacket.OptAnswer {
  return { type: 'OPT', name: '.', udpPayloadSize: SERVER_EDNS_PAYLOAD_BYTES, extendedRcode, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
}

/** What a reply keeps of the query's header: its ID, opcode, RD and CD bits. */
export function replyFlags(query: dnsPacket.Packet, rcode: number, more = 0): number {
  const q = query.flags ?? 0;
  return (q & OPCODE_MASK) | (q & (dnsPacket.RECURSION_DESIRED | dnsPacket.CHECKING_DISABLED)) | dnsPacket.RECURSION_AVAILABLE | more | rcode;
}

/** A reply with no records: the query's question (when it had exactly one) and rcode. */
export function emptyReply(query: dnsPacket.Packet, rcode: number, opt: dnsPacket.OptAnswer | null): dnsPacket.Packet {
  return {
    type: 'response',
    id: query.id ?? 0,
    flags: replyFlags(query, rcode),
    questions: query.questions?.length === 1 ? query.questions : [],
    additionals: opt ? [opt] : [],
  };
}

/** The UDP payload size a query allows its reply: 512 without OPT, else its OPT's size within [512, MAX_UDP_PAYLOAD_BYTES]. */
export function udpLimit(opt: dnsPacket.OptAnswer | null): number {
  if (!opt) return CLASSIC_UDP_PAYLOAD_BYTES;
  return Math.min(MAX_UDP_PAYLOAD_BYTES, Math.max(CLASSIC_UDP_PAYLOAD_BYTES, opt.udpPayloadSize));
}

/**
 * The reply to send within `limit` bytes: `reply` itself, or when it encodes
 * larger, its question and OPT alone with TC=1 (RFC 1035 4.2.1), which makes
 * the client ask again over TCP. Throws when dns-packet cannot encode the reply.
 */
export function encodeWithin(reply: dnsPacket.Packet, limit: number): { packet: dnsPacket.Packet; truncated: boolean } {
  const size = dnsPacket.encodingLength(reply);
  if (size <= limit) return { packet: reply, truncated: false };
  const cut: dnsPacket.Packet = {
    type: 'response',
    id: reply.id,
    flags: (reply.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
    questions: reply.questions,
    additionals: optsOf(reply),
  };
  return { packet: cut, truncated: true };
}
