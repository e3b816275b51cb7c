// The node's relay connections: one client per region it needs (its home
// region, where peers reach it, and each peer's home region, where it reaches
// them), kept in step with the relay map from control. The engine sees them
// through the RelayPaths interface.
import type { RelayRegion } from '../netmap/types.js';
import type { RelayPaths } from '../engine/paths/paths.js';
import { RelayClient } from '../relay/client.js';
import { publicKeyOf } from '../crypto/x25519.js';
import { relayShortIdsWanted } from '../util/knobs.js';

export interface RelayStatus {
  region: string;
  url: string;
  connected: boolean;
  /** the relay address the connection went to (the URL's host, or the region's IPv6 address), while connected */
  address?: string | null;
  latencyMs: number | null;
  lastError: string | null;
}

export class RelayManager implements RelayPaths {
  private readonly clients = new Map<string, { region: RelayRegion; client: RelayClient }>();

  private readonly pick: number;
  /** MESHCTL_RELAY_SHORT_IDS=0 turns short peer ids off, to compare */
  private readonly shortIds = relayShortIdsWanted();
  /** frame counts of clients already stopped, so the totals never go down when a region is dropped */
  private readonly retired = { sent: 0, received: 0, dropped: 0 };

  constructor(
    private readonly nodePrivate: Buffer,
    private readonly onPacket: (region: string, src: Buffer, pkt: Buffer) => void,
    private readonly log: (m: string) => void,
    private readonly onConnected: (region: string) => void = () => {},
    /** the time relays are told (the control server's, as the node estimates it: server-clock.ts) */
    private readonly wallNow: () => number = Date.now,
  ) {
    this.pick = publicKeyOf(nodePrivate)[0]!;
  }

  /**
   * Connects to the `wanted` regions of `map`, drops the others. A region with
   * several relays: each node picks one by its key, so nodes spread over them
   * and the region's mesh carries packets between them.
   */
  update(all: RelayRegion[], wanted: Set<string>): void {
    const map: RelayRegion[] = [];
    for (const code of new Set(all.map((r) => r.code))) {
      const choices = all.filter((r) => r.code === code);
      map.push(choices[this.pick % choices.length]!);
    }
    for (const [code, c] of this.clients) {
      const r = map.find((x) => x.code === code);
      if (!r || !wanted.has(code) || r.url !== c.region.url || r.certFingerprint !== c.region.certFingerprint || r.ipv6 !== c.region.ipv6) {
        c.client.stop();
        this.retire(c.client);
        this.clients.delete(code);
      }
    }
    for (const r of map) {
      if (!wanted.has(r.code) || this.clients.has(r.code)) continue;
      const client = new RelayClient({
        url: r.url,
        ...(r.ipv6 ? { altAddress: r.ipv6 } : {}),
        fingerprint: r.certFingerprint,
        nodePrivate: this.nodePrivate,
        ...(this.shortIds ? {} : { shortIds: 0 }),
        wallNow: this.wallNow,
        onPacket: (src, pkt) => this.onPacket(r.code, src, pkt),
        onState: (up, err) => {
          this.log(up ? `relay ${r.code} connected` : `relay ${r.code} disconnected${err ? `: ${err}` : ''}`);
          if (up) this.onConnected(r.code);
        },
      });
      client.start();
      this.clients.set(r.code, { region: r, client });
    }
  }

  send(region: string, dst: Buffer, pkt: Buffer): boolean {
    return this.clients.get(region)?.client.send(dst, pkt) ?? false;
  }

  /** Checks every connected relay now (RelayClient.probe): a dead one reconnects instead of waiting for its idle timeout. */
  probeAll(timeoutMs: number): void {
    for (const { client } of this.clients.values()) client.probe(timeoutMs);
  }

  connected(region: string): boolean {
    return this.clients.get(region)?.client.connected ?? false;
  }

  status(): RelayStatus[] {
    return [...this.clients.values()].map(({ region, client }) => ({
      region: region.code,
      url: region.url,
      connected: client.connected,
      address: client.remoteAddress,
      latencyMs: client.latencyMs,
      lastError: client.lastError,
    }));
  }

  /** Packets sent to and received from every relay since this manager started, and sends dropped while not connected. */
  frameCounts(): { sent: number; received: number; dropped: number } {
    const t = { ...this.retired };
    for (const { client } of this.clients.values()) {
      t.sent += client.stats.sent;
      t.received += client.stats.received;
      t.dropped += client.stats.dropped;
    }
    return t;
  }

  private retire(client: RelayClient): void {
    this.retired.sent += client.stats.sent;
    this.retired.received += client.stats.received;
    this.retired.dropped += client.stats.dropped;
  }

  stop(): void {
    for (const c of this.clients.values()) {
      c.client.stop();
      this.retire(c.client);
    }
    this.clients.clear();
  }
}
