// Forwarding a question the mesh zone does not hold: to a split-DNS route's
// resolvers or to the host's own resolvers (those it used before meshctl).
// Each try is a new query (random ID, fresh socket on a random port, see
// transport.ts); a truncated UDP reply is asked again over TCP; a try that
// times out or fails moves to the next resolver; all of it within a total
// bound, after which the client gets SERVFAIL. Mesh names never come here, so
// they keep answering whatever the upstreams do.
import * as dnsPacket from 'dns-packet';
import type { IpEndpoint } from '../util/netaddr.js';
import { RCODE, rcodeName, rcodeOf } from './message.js';
import { exchangeTcp, exchangeUdp, randomId } from './transport.js';

/** One try's bound, ms: a resolver on the LAN or the ISP answers in tens of ms; a second try still fits in the total. */
export const FORWARD_TRY_TIMEOUT_MS = 1000;
/**
 * The bound on a whole forward, ms: then the client gets SERVFAIL. Shorter than
 * glibc's 5 s per-try timeout, so an application learns of a dead upstream from
 * the answer, not from its own timeout.
 */
export const FORWARD_TOTAL_TIMEOUT_MS = 2000;
/** Forwards in flight at once: each holds a socket and a timer; past it, new ones get SERVFAIL at once (no queue to grow). */
export const MAX_INFLIGHT_FORWARDS = 256;
/** Passes over the resolver list within the total bound: a lost datagram gets a second chance. */
export const FORWARD_ROUNDS = 2;
/** EDNS0 payload size stated to upstreams: the DNS flag day 2020 value, so upstream replies are never IP-fragmented; bigger ones come over TCP. */
export const FORWARD_EDNS_PAYLOAD_BYTES = 1232;

export interface ForwarderOptions {
  tryTimeoutMs?: number;
  totalTimeoutMs?: number;
  maxInflight?: number;
}

export type ForwardResult =
  | { ok: true; packet: dnsPacket.DecodedPacket; server: string; tcp: boolean }
  | { ok: false; reason: 'busy' | 'no-upstream' | 'failed'; message: string };

/** What of the client's query goes upstream: its one question, RD and CD, and its EDNS0 OPT (its DO bit goes upstream). */
export interface ForwardQuestion {
  question: dnsPacket.Question;
  recursionDesired: boolean;
  checkingDisabled: boolean;
  opt: dnsPacket.OptAnswer | null;
}

export class Forwarder {
  private readonly tryTimeoutMs: number;
  private readonly totalTimeoutMs: number;
  private readonly maxInflight: number;
  private inflightNow = 0;

  constructor(o: ForwarderOptions = {}) {
    this.tryTimeoutMs = o.tryTimeoutMs ?? FORWARD_TRY_TIMEOUT_MS;
    this.totalTimeoutMs = o.totalTimeoutMs ?? FORWARD_TOTAL_TIMEOUT_MS;
    this.maxInflight = o.maxInflight ?? MAX_INFLIGHT_FORWARDS;
  }

  get inflight(): number {
    return this.inflightNow;
  }

  private query(f: ForwardQuestion): dnsPacket.Packet {
    // the client's DO bit; our own payload size (the reply is re-fitted to the client's);
    // the client's options (client subnet, cookies) stay here
    const flags = f.opt ? f.opt.flags & dnsPacket.DNSSEC_OK : 0;
    const opt: dnsPacket.OptAnswer = {
      type: 'OPT',
      name: '.',
      udpPayloadSize: FORWARD_EDNS_PAYLOAD_BYTES,
      extendedRcode: 0,
      ednsVersion: 0,
      flags,
      flag_do: flags !== 0,
      options: [],
    };
    let header = 0;
    if (f.recursionDesired) header |= dnsPacket.RECURSION_DESIRED;
    if (f.checkingDisabled) header |= dnsPacket.CHECKING_DISABLED;
    return { type: 'query', id: randomId(), flags: header, questions: [f.question], additionals: [opt] };
  }

  /** Asks `servers` in turn until one answers, within the total bound. */
  async forward(f: ForwardQuestion, servers: readonly IpEndpoint[]): Promise<ForwardResult> {
    if (servers.length === 0) return { ok: false, reason: 'no-upstream', message: 'no upstream resolver to forward to' };
    if (this.inflightNow >= this.maxInflight) return { ok: false, reason: 'busy', message: `${this.maxInflight} forwards already in flight` };
    this.inflightNow++;
    try {
      return await this.tryAll(f, servers);
    } finally {
      this.inflightNow--;
    }
  }

  private async tryAll(f: ForwardQuestion, servers: readonly IpEndpoint[]): Promise<ForwardResult> {
    const deadline = performance.now() + this.totalTimeoutMs;
    let fallback: ForwardResult | null = null;
    let last = 'no try finished';
    for (let round = 0; round < FORWARD_ROUNDS; round++) {
      for (const server of servers) {
        const left = deadline - performance.now();
        if (left <= 0) return fallback ?? { ok: false, reason: 'failed', message: `no upstream answered within ${this.totalTimeoutMs} ms (${last})` };
        const r = await exchangeUdp(server, this.query(f), Math.min(this.tryTimeoutMs, left));
        if (!r.ok) {
          last = r.message;
          continue;
        }
        let packet = r.packet;
        let tcp = false;
        if (packet.flag_tc) {
          const t = await exchangeTcp(server, this.query(f), Math.max(1, deadline - performance.now()));
          if (!t.ok) {
            last = t.message;
            continue;
          }
          packet = t.packet;
          tcp = true;
        }
        const result: ForwardResult = { ok: true, packet, server: server.text, tcp };
        // a resolver that fails or refuses this question may be alone in that: ask the next, keep this answer as the last resort
        const rcode = rcodeOf(packet);
        if (rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) {
          fallback ??= result;
          last = `${server.text} answered ${rcodeName(rcode)}`;
          continue;
        }
        return result;
      }
    }
    return fallback ?? { ok: false, reason: 'failed', message: `no upstream answered (${last})` };
  }
}
