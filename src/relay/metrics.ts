// The relay's Prometheus metrics (docs/metrics.md), read at each scrape from
// the counters the relay and its STUN server already keep: the data path does
// nothing for them beyond those counters.
import { Counter, Gauge, Registry } from 'prom-client';
import type { RelayServer } from './server.js';

export interface RelayMetrics {
  readonly contentType: string;
  metrics(): Promise<string>;
  readonly registry: Registry;
}

type Source = Pick<RelayServer, 'stats' | 'stunStats' | 'meshLinks'>;

export function relayMetrics(relay: Source): RelayMetrics {
  const registry = new Registry();
  const registers = [registry];
  const s = relay.stats;

  new Gauge({
    name: 'meshctl_relay_clients',
    help: 'Nodes connected to this relay now (mesh links to other relays not counted).',
    registers,
    collect() {
      this.set(s.clients);
    },
  });
  new Gauge({
    name: 'meshctl_relay_pending_connections',
    help: 'Connections accepted and not yet verified (TLS, upgrade, handshake).',
    registers,
    collect() {
      this.set(s.pending.connections);
    },
  });
  new Gauge({
    name: 'meshctl_relay_mesh_links',
    help: "Links to this region's other relays, by state.",
    labelNames: ['state'],
    registers,
    collect() {
      const links = relay.meshLinks;
      const up = links.filter((l) => l.connected).length;
      this.set({ state: 'connected' }, up);
      this.set({ state: 'disconnected' }, links.length - up);
    },
  });
  const counter = (name: string, help: string, labelName: string, values: () => Record<string, number>): void => {
    new Counter({
      name,
      help,
      labelNames: [labelName],
      registers,
      collect() {
        this.reset();
        for (const [label, n] of Object.entries(values())) this.inc({ [labelName]: label }, n);
      },
    });
  };
  // `local`: to a client of this relay; `mesh`: handed to another relay of the region
  counter('meshctl_relay_forwarded_packets_total', 'Packets forwarded, by where they went: local (a client here) or mesh (another relay).', 'to', () => ({
    local: s.packetsRelayed,
    mesh: s.packetsForwarded,
  }));
  counter('meshctl_relay_forwarded_bytes_total', 'Bytes of the packets forwarded (frame headers not counted), by where they went.', 'to', () => ({
    local: s.bytesRelayed,
    mesh: s.bytesForwarded,
  }));
  counter(
    'meshctl_relay_dropped_packets_total',
    'Packets dropped, by reason: queue_full (the receiver is slow), rate_limited, no_such_peer, malformed, too_large.',
    'reason',
    () => ({
      queue_full: s.dropped.queueFull,
      rate_limited: s.dropped.rateLimited,
      no_such_peer: s.dropped.noSuchPeer,
      malformed: s.dropped.malformed,
      too_large: s.dropped.tooLarge,
    }),
  );
  counter('meshctl_relay_refused_connections_total', 'Connections refused before they became clients, by reason.', 'reason', () => ({
    handshake: s.refused.handshake,
    unauthorized: s.refused.unauthorized,
    busy: s.refused.busy,
    pre_auth_backlog: s.refused.preAuthBacklog,
    full: s.refused.full,
    over_source: s.pending.refusedOverSource,
    over_total: s.pending.refusedOverTotal,
    timed_out: s.pending.timedOut,
    revoked: s.revoked,
  }));
  counter('meshctl_relay_stun_requests_total', 'STUN requests, by result: answered, malformed, rate_limited.', 'result', () => {
    const t = relay.stunStats;
    return { answered: t ? t.requests - t.rateLimited : 0, malformed: t?.malformed ?? 0, rate_limited: t?.rateLimited ?? 0 };
  });

  return { registry, contentType: registry.contentType, metrics: () => registry.metrics() };
}
