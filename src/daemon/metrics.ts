// The daemon's Prometheus metrics (docs/metrics.md): read at each scrape from
// the state and counters the backend and the engine already keep, so the data
// path does no work for them. One view of the backend is taken per scrape and
// every metric's collect callback reads that view. The registry is this
// module's own, never prom-client's global one. The module is loaded only when
// --metrics-listen is given or `meshctl metrics` asks: an idle daemon does not
// carry prom-client.
import { Counter, Gauge, Registry } from 'prom-client';
import type { BackendState } from '../localapi/types.js';
import type { EngineHost } from './engine-host.js';
import type { RelayStatus } from './relays.js';
import type { AclFilterStats } from '../engine/device/acl-filter.js';
import type { DnsStats } from '../dns/server.js';
import { DROP_REASONS } from '../engine/device/stats.js';

/** What the backend hands over at each scrape (Backend.metricsView). */
export interface DaemonMetricsView {
  backendState: BackendState;
  wantRunning: boolean;
  controlConnected: boolean;
  /** each peer in the map: the kind of path that carries its packets now */
  peerPaths: ('direct' | 'relay' | 'none')[];
  engine: ReturnType<EngineHost['counters']> | null;
  relays: RelayStatus[];
  relayFrames: { sent: number; received: number; dropped: number } | null;
  acl: AclFilterStats | null;
  droppedDestination: number;
  dns: DnsStats | null;
}

const PATHS = ['direct', 'relay', 'none'] as const;
const BACKEND_STATES: readonly BackendState[] = ['NoState', 'NeedsLogin', 'Starting', 'Running', 'Stopped'];
/** The DNS server's outcome counters, each a `result` label value (snake case, as Prometheus labels are written). */
const DNS_RESULTS = {
  answered: 'answered',
  nxdomain: 'nxdomain',
  nodata: 'nodata',
  forwarded: 'forwarded',
  servfail: 'servfail',
  refused: 'refused',
  formerr: 'formerr',
  notimp: 'notimp',
  dropped: 'dropped',
  rateLimited: 'rate_limited',
} as const satisfies Partial<Record<keyof DnsStats, string>>;
const ACL_REASONS = {
  droppedNoRule: 'no_rule',
  droppedNotAReply: 'not_a_reply',
  droppedFragment: 'fragment',
  droppedMalformed: 'malformed',
} as const;

const EMPTY_VIEW: DaemonMetricsView = {
  backendState: 'NoState',
  wantRunning: false,
  controlConnected: false,
  peerPaths: [],
  engine: null,
  relays: [],
  relayFrames: null,
  acl: null,
  droppedDestination: 0,
  dns: null,
};

/** camelCase engine reason → snake_case label value */
function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export interface DaemonMetrics {
  readonly contentType: string;
  /** the text exposition, from a fresh view of the backend */
  metrics(): Promise<string>;
  readonly registry: Registry;
}

export function daemonMetrics(read: () => DaemonMetricsView): DaemonMetrics {
  const registry = new Registry();
  // replaced by a fresh view at the start of each scrape
  let v: DaemonMetricsView = EMPTY_VIEW;
  const registers = [registry];

  new Gauge({
    name: 'meshctl_daemon_peers',
    help: 'Peers in the network map, by the path that carries their packets now (none: no path yet or idle).',
    labelNames: ['path'],
    registers,
    collect() {
      const n = { direct: 0, relay: 0, none: 0 };
      for (const p of v.peerPaths) n[p]++;
      for (const p of PATHS) this.set({ path: p }, n[p]);
    },
  });
  new Gauge({
    name: 'meshctl_daemon_backend_state',
    help: "The daemon's state: 1 for the current one, 0 for the others.",
    labelNames: ['state'],
    registers,
    collect() {
      for (const s of BACKEND_STATES) this.set({ state: s }, v.backendState === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'meshctl_daemon_control_connected',
    help: 'The map stream to the control server is open (1) or not (0).',
    registers,
    collect() {
      this.set(v.controlConnected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'meshctl_daemon_relay_connections',
    help: 'Relay connections the daemon keeps (its home region and its peers), by state.',
    labelNames: ['state'],
    registers,
    collect() {
      const up = v.relays.filter((r) => r.connected).length;
      this.set({ state: 'connected' }, up);
      this.set({ state: 'disconnected' }, v.relays.length - up);
    },
  });

  // Counters: the engine's own totals, set from its counters at each scrape. They restart at 0 when the engine does
  // (`meshctl down` then `up`), which Prometheus reads as a counter reset.
  const engineCounter = (name: string, help: string, get: (e: NonNullable<DaemonMetricsView['engine']>) => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        if (v.engine) this.inc(get(v.engine));
      },
    });
  };
  engineCounter('meshctl_daemon_sent_packets_total', 'WireGuard datagrams sent (data, keepalives, handshakes), every path.', (e) => e.engine.tx.packets);
  engineCounter('meshctl_daemon_sent_bytes_total', 'Bytes of WireGuard datagrams sent, every path.', (e) => e.engine.tx.bytes);
  engineCounter('meshctl_daemon_received_packets_total', 'WireGuard datagrams received, every path.', (e) => e.engine.rx.packets);
  engineCounter('meshctl_daemon_received_bytes_total', 'Bytes of WireGuard datagrams received, every path.', (e) => e.engine.rx.bytes);
  engineCounter('meshctl_daemon_handshakes_initiated_total', 'Handshake initiations sent, retries included.', (e) => e.engine.handshakes.initiated);
  engineCounter('meshctl_daemon_handshakes_completed_total', 'Handshakes completed, either role (sessions made).', (e) => e.engine.sessions);
  engineCounter(
    'meshctl_daemon_handshakes_failed_total',
    'Handshakes given up after the retry time (90 s) without an answer.',
    (e) => e.engine.handshakes.failed,
  );

  new Counter({
    name: 'meshctl_daemon_path_sent_packets_total',
    help: 'Packets to peers by the path chosen for them: direct (UDP), relay, or none (no path: dropped).',
    labelNames: ['path'],
    registers,
    collect() {
      this.reset();
      const s = v.engine?.sends;
      if (!s) return;
      this.inc({ path: 'direct' }, s.direct + s.directGuess);
      this.inc({ path: 'relay' }, s.relay);
      this.inc({ path: 'none' }, s.noPath);
    },
  });
  // WireGuard datagrams (disco and STUN not included) by the path that carried them, each way: the engine's PathTraffic.
  const pathTraffic = (name: string, help: string, unit: 'Packets' | 'Bytes'): void => {
    new Counter({
      name,
      help,
      labelNames: ['path', 'direction'],
      registers,
      collect() {
        this.reset();
        const t = v.engine?.traffic;
        if (!t) return;
        this.inc({ path: 'direct', direction: 'sent' }, t[`directSent${unit}`]);
        this.inc({ path: 'relay', direction: 'sent' }, t[`relaySent${unit}`]);
        this.inc({ path: 'direct', direction: 'received' }, t[`directReceived${unit}`]);
        this.inc({ path: 'relay', direction: 'received' }, t[`relayReceived${unit}`]);
      },
    });
  };
  pathTraffic('meshctl_daemon_path_packets_total', 'WireGuard datagrams by path (direct: UDP, relay) and direction (sent, received).', 'Packets');
  pathTraffic('meshctl_daemon_path_bytes_total', 'Bytes of WireGuard datagrams by path (direct: UDP, relay) and direction (sent, received).', 'Bytes');
  new Counter({
    name: 'meshctl_daemon_relay_packets_total',
    help: 'Frames to and from relays: packets (WireGuard, disco) and, sent, the latency pings; dropped: not sent, the relay was not connected.',
    labelNames: ['direction'],
    registers,
    collect() {
      this.reset();
      const f = v.relayFrames;
      if (!f) return;
      this.inc({ direction: 'sent' }, f.sent);
      this.inc({ direction: 'received' }, f.received);
      this.inc({ direction: 'dropped' }, f.dropped);
    },
  });
  new Counter({
    name: 'meshctl_daemon_dropped_packets_total',
    help: "Packets and datagrams the engine dropped, by reason (docs/metrics.md lists them); filtered_in/filtered_out are the packet filters' drops.",
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      const d = v.engine?.engine.dropped;
      if (!d) return;
      for (const r of DROP_REASONS) this.inc({ reason: snake(r) }, d[r]);
    },
  });
  new Counter({
    name: 'meshctl_daemon_filter_dropped_packets_total',
    help: "The packet filters' drops by reason: the access policy's (no_rule, not_a_reply, fragment, malformed) and the destination check's.",
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      if (!v.engine) return;
      this.inc({ reason: 'destination' }, v.droppedDestination);
      const a = v.acl;
      for (const [k, label] of Object.entries(ACL_REASONS)) this.inc({ reason: label }, a ? a[k as keyof typeof ACL_REASONS] : 0);
    },
  });
  new Counter({
    name: 'meshctl_daemon_dns_queries_total',
    help: "Queries to the node's resolver (100.100.100.100), by result.",
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      const d = v.dns;
      if (!d) return;
      for (const [k, label] of Object.entries(DNS_RESULTS)) this.inc({ result: label }, d[k as keyof typeof DNS_RESULTS]);
    },
  });

  return {
    registry,
    contentType: registry.contentType,
    async metrics(): Promise<string> {
      v = read();
      return registry.metrics();
    },
  };
}
