// The network report: can this node use UDP, what address and port do its
// packets leave the NAT with (asked of two or more STUN servers through the
// WireGuard socket itself, since that is the mapping peers need), does that
// mapping change with the destination ("hard" NAT), how far is each relay
// region, and which is nearest. STUN answers reach `onStun` from the socket.
// Where a relay has an IPv6 address, the same socket asks it over IPv6 too:
// the answer is the node's public IPv6 endpoint (no NAT there, but maybe a
// stateful firewall, which the disco pings of both sides open like an easy NAT).
import { isIPv4, isIPv6 } from 'node:net';
import { bindingRequest, parseStun } from './stun.js';
import { isoTime } from '../util/time.js';
import { cjsRequire } from '../util/cjs.js';
import type { NetReport } from '../netmap/netreport.js';
import { parseIpEndpoint } from '../util/netaddr.js';

export interface StunTarget {
  region: string;
  host: string;
  port: number;
  /** the relay's HTTPS URL, for latency when UDP is blocked */
  url: string;
  /** the relay's IPv6 address (from the relay map), asked over IPv6 beside `host` */
  host6?: string;
}

/** Each STUN request goes out this many times, spaced, to survive loss. */
const STUN_TRIES_MS = [0, 150, 450];
const DEFAULT_TIMEOUT_MS = 2500;

export interface NetcheckDeps {
  send(pkt: Buffer, ep: { address: string; port: number }): boolean;
  httpsLatency(url: string, timeoutMs: number): Promise<number | null>;
  portMapping?(): Promise<string[]>;
  /** whether the node has a global IPv6 address now; without one, IPv6 STUN is not tried (it could only time out). Default: try. */
  ipv6Usable?(): boolean;
}

export class Netchecker {
  private readonly waiting = new Map<string, (mapped: string, rttMs: number) => void>();
  readonly stats = { stunMalformed: 0 };

  constructor(private readonly deps: NetcheckDeps) {}

  /** A STUN packet from the shared socket. */
  onStun(buf: Buffer): void {
    const m = parseStun(buf);
    if (m?.kind !== 'response') {
      this.stats.stunMalformed++;
      return;
    }
    const waiter = this.waiting.get(m.txid.toString('hex'));
    if (!waiter) return;
    // the answer's address becomes an endpoint peers are told: canonical, or not at all
    let ep: string;
    try {
      ep = parseIpEndpoint(m.mapped.address.includes(':') ? `[${m.mapped.address}]:${m.mapped.port}` : `${m.mapped.address}:${m.mapped.port}`).text;
    } catch {
      this.stats.stunMalformed++;
      return;
    }
    waiter(ep, 0);
  }

  private async probe(host: string, port: number, timeoutMs: number): Promise<{ mapped: string; rttMs: number; server: string } | null> {
    let address: string;
    try {
      // the resolver is loaded only for names: relays given by address never need it (~0.6 MB)
      address =
        isIPv4(host) || isIPv6(host)
          ? host
          : (await (cjsRequire('node:dns/promises') as typeof import('node:dns/promises')).lookup(host, { family: 4 })).address;
    } catch {
      return null;
    }
    const server = isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
    const { txid, packet } = bindingRequest();
    const key = txid.toString('hex');
    const started = performance.now();
    return new Promise((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const done = (r: { mapped: string; rttMs: number; server: string } | null): void => {
        this.waiting.delete(key);
        for (const x of timers) clearTimeout(x);
        resolve(r);
      };
      this.waiting.set(key, (mapped) => done({ mapped, rttMs: performance.now() - started, server }));
      // a socket of that family missing (no IPv6 on the host): no answer can come
      for (const at of STUN_TRIES_MS) timers.push(setTimeout(() => this.deps.send(packet, { address, port }) || done(null), at));
      timers.push(setTimeout(() => done(null), timeoutMs));
    });
  }

  /** HTTPS latency to the relay's URL, or to its IPv6 address when the URL's host does not answer. */
  private async httpsLatency(t: StunTarget, timeoutMs: number): Promise<number | null> {
    const ms = await this.deps.httpsLatency(t.url, timeoutMs);
    if (ms !== null || !t.host6 || !isIPv6(t.host6)) return ms;
    const u = new URL(t.url);
    u.hostname = `[${t.host6}]`;
    return this.deps.httpsLatency(u.toString().replace(/\/$/, ''), timeoutMs);
  }

  /**
   * `onMapped` gets the STUN-mapped addresses as soon as the STUN probes are done: port-mapping
   * probes wait up to 1.4 s for a UPnP gateway that most networks lack, and a peer behind NAT can
   * reach us only once it knows the mapped address (docs/nat.md).
   */
  async run(targets: StunTarget[], timeoutMs = DEFAULT_TIMEOUT_MS, onMapped?: (mapped: NetReport['mapped']) => void): Promise<NetReport> {
    const portMappingDone = this.deps.portMapping?.().catch(() => []) ?? Promise.resolve([]);
    const regionLatencyMs: Record<string, number> = {};
    const mapped: NetReport['mapped'] = [];
    // each family's probes report as they finish: IPv4's answers need not wait for IPv6's to time out
    const family = async (probes: { region: string; host: string; port: number }[]): Promise<void> => {
      const results = await Promise.all(probes.map((p) => this.probe(p.host, p.port, timeoutMs)));
      let added = false;
      results.forEach((r, i) => {
        if (!r) return;
        const region = probes[i]!.region;
        regionLatencyMs[region] = Math.min(regionLatencyMs[region] ?? Infinity, r.rttMs);
        mapped.push({ region, server: r.server, mapped: r.mapped });
        added = true;
      });
      if (added) onMapped?.([...mapped]);
    };
    const v6 = this.deps.ipv6Usable?.() ?? true;
    await Promise.all([
      family(targets.map((t) => ({ region: t.region, host: t.host, port: t.port }))),
      family(v6 ? targets.flatMap((t) => (t.host6 && t.host6 !== t.host ? [{ region: t.region, host: t.host6, port: t.port }] : [])) : []),
    ]);
    const portMapping = await portMappingDone;
    const udp = mapped.length > 0;
    if (!udp) {
      // no UDP at all: measure the relays over HTTPS instead, so a home region can still be chosen
      const lat = await Promise.all(targets.map((t) => this.httpsLatency(t, timeoutMs)));
      lat.forEach((ms, i) => {
        if (ms !== null) regionLatencyMs[targets[i]!.region] = Math.min(regionLatencyMs[targets[i]!.region] ?? Infinity, ms);
      });
    }
    // NAT behaviour is an IPv4 question: IPv6 answers name the node's own address
    const mapped4 = mapped.filter((m) => !m.mapped.startsWith('['));
    const mapped6 = mapped.filter((m) => m.mapped.startsWith('['));
    const distinctServers = new Set(mapped4.map((m) => m.server.slice(0, m.server.lastIndexOf(':'))));
    const distinctMapped = new Set(mapped4.map((m) => m.mapped));
    const preferred = Object.entries(regionLatencyMs).sort((a, b) => a[1] - b[1])[0]?.[0] ?? null;
    return {
      udp,
      ipv4: mapped4[0]?.mapped ?? null,
      ipv6: mapped6[0]?.mapped ?? null,
      mappingVariesByDestIP: distinctServers.size >= 2 ? distinctMapped.size > 1 : null,
      regionLatencyMs,
      preferredRegion: preferred,
      mapped,
      portMapping,
      at: isoTime(),
    };
  }
}

/**
 * Home region with hysteresis (Tailscale's rule): keep the current one unless
 * the new best is both more than 10 ms faster and under 2/3 of its latency.
 */
export function chooseHome(current: string | null, latency: Record<string, number>): string | null {
  const best = Object.entries(latency).sort((a, b) => a[1] - b[1])[0];
  if (!best) return current;
  if (!current || latency[current] === undefined) return best[0];
  const cur = latency[current]!;
  return best[1] < cur - 10 && best[1] < (cur * 2) / 3 ? best[0] : current;
}
