// The network report: can this node use UDP, what address and port do its
// packets leave the NAT with (asked of two or more STUN servers through the
// WireGuard socket itself, since that is the mapping peers need), does that
// mapping change with the destination ("hard" NAT), how far is each relay
// region, and which is nearest. STUN answers reach `onStun` from the socket.
import { isIPv4 } from 'node:net';
import { bindingRequest, parseStun } from './stun.js';
import { isoTime } from '../util/time.js';
import { cjsRequire } from '../util/cjs.js';
import type { NetReport } from '../netmap/netreport.js';

export interface StunTarget {
  region: string;
  host: string;
  port: number;
  /** the relay's HTTPS URL, for latency when UDP is blocked */
  url: string;
}

/** Each STUN request goes out this many times, spaced, to survive loss. */
const STUN_TRIES_MS = [0, 150, 450];
const DEFAULT_TIMEOUT_MS = 2500;

export interface NetcheckDeps {
  send(pkt: Buffer, ep: { address: string; port: number }): boolean;
  httpsLatency(url: string, timeoutMs: number): Promise<number | null>;
  portMapping?(): Promise<string[]>;
}

export class Netchecker {
  private readonly waiting = new Map<string, (mapped: string, rttMs: number) => void>();
  readonly stats = { stunMalformed: 0 };

  constructor(private readonly deps: NetcheckDeps) {}

  /** A STUN packet from the shared socket. */
  onStun(buf: Buffer): void {
    const m = parseStun(buf);
    if (!m || m.kind !== 'response') {
      this.stats.stunMalformed++;
      return;
    }
    this.waiting.get(m.txid.toString('hex'))?.(`${m.mapped.address}:${m.mapped.port}`, 0);
  }

  private async probe(t: StunTarget, timeoutMs: number): Promise<{ mapped: string; rttMs: number; server: string } | null> {
    let address: string;
    try {
      // the resolver is loaded only for names: relays given by address never need it (~0.6 MB)
      address = isIPv4(t.host) ? t.host : (await (cjsRequire('node:dns/promises') as typeof import('node:dns/promises')).lookup(t.host, { family: 4 })).address;
    } catch {
      return null;
    }
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
      this.waiting.set(key, (mapped) => done({ mapped, rttMs: performance.now() - started, server: `${address}:${t.port}` }));
      for (const at of STUN_TRIES_MS) timers.push(setTimeout(() => this.deps.send(packet, { address, port: t.port }), at));
      timers.push(setTimeout(() => done(null), timeoutMs));
    });
  }

  /**
   * `onMapped` gets the STUN-mapped addresses as soon as the STUN probes are done: port-mapping
   * probes wait up to 1.4 s for a UPnP gateway that most networks lack, and a peer behind NAT can
   * reach us only once it knows the mapped address (docs/nat.md).
   */
  async run(targets: StunTarget[], timeoutMs = DEFAULT_TIMEOUT_MS, onMapped?: (mapped: NetReport['mapped']) => void): Promise<NetReport> {
    const portMappingDone = this.deps.portMapping?.().catch(() => []) ?? Promise.resolve([]);
    const results = await Promise.all(targets.map((t) => this.probe(t, timeoutMs)));
    const regionLatencyMs: Record<string, number> = {};
    const mapped: NetReport['mapped'] = [];
    results.forEach((r, i) => {
      if (!r) return;
      const region = targets[i]!.region;
      regionLatencyMs[region] = Math.min(regionLatencyMs[region] ?? Infinity, r.rttMs);
      mapped.push({ region, server: r.server, mapped: r.mapped });
    });
    if (mapped.length) onMapped?.(mapped);
    const portMapping = await portMappingDone;
    const udp = mapped.length > 0;
    if (!udp) {
      // no UDP at all: measure the relays over HTTPS instead, so a home region can still be chosen
      const lat = await Promise.all(targets.map((t) => this.deps.httpsLatency(t.url, timeoutMs)));
      lat.forEach((ms, i) => {
        if (ms !== null) regionLatencyMs[targets[i]!.region] = Math.min(regionLatencyMs[targets[i]!.region] ?? Infinity, ms);
      });
    }
    const distinctServers = new Set(mapped.map((m) => m.server.split(':')[0]));
    const distinctMapped = new Set(mapped.map((m) => m.mapped));
    const preferred = Object.entries(regionLatencyMs).sort((a, b) => a[1] - b[1])[0]?.[0] ?? null;
    return {
      udp,
      ipv4: mapped[0]?.mapped ?? null,
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
