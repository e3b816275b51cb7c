// The control server's Prometheus metrics (docs/metrics.md). Gauges and the
// map-stream counters are read at each scrape from the server's own state
// (ControlServer.metricsView); request latencies, registrations and auth
// failures come from the request observer the server calls once per answered
// request. Labels are bounded: a route from a fixed set (never the path asked
// for), an HTTP status, an error code from the protocol's fixed list.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ControlErrorCode } from './protocol.js';
import type { ControlMetricsView, ControlRoute, RequestObserver } from './server.js';

/** Refusals that mean the caller could not prove who it is or may not join: what an attacker guessing keys causes. */
const AUTH_FAILURES: ReadonlySet<ControlErrorCode> = new Set([
  'BAD_SIGNATURE',
  'STALE_REQUEST',
  'AUTHKEY_REQUIRED',
  'AUTHKEY_INVALID',
  'AUTHKEY_USED',
  'AUTHKEY_EXPIRED',
  'AUTHKEY_REVOKED',
]);

/**
 * Request latency buckets in seconds: sealed requests take ~1-5 ms (a box open and a database write), a map stream's
 * set-up a little more; the top buckets catch a store that stalls.
 */
const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export interface ControlMetrics {
  readonly contentType: string;
  metrics(): Promise<string>;
  /** hand this to ControlServerOptions.requestObserver */
  readonly observer: RequestObserver;
  readonly registry: Registry;
}

/** `read` is called once per scrape; until the server is built it may return null (the gauges then read 0). */
export function controlMetrics(read: () => ControlMetricsView | null): ControlMetrics {
  const registry = new Registry();
  const registers = [registry];
  let v: ControlMetricsView | null = null;

  new Gauge({
    name: 'meshctl_control_nodes_registered',
    help: 'Nodes in the database (pending and expired ones included).',
    registers,
    collect() {
      this.set(v?.nodesRegistered ?? 0);
    },
  });
  new Gauge({
    name: 'meshctl_control_nodes_online',
    help: 'Nodes online: with a map stream open, or presumed online for a short grace after a restart.',
    registers,
    collect() {
      this.set(v?.nodesOnline ?? 0);
    },
  });
  new Gauge({
    name: 'meshctl_control_map_streams',
    help: 'Map streams open now (one per connected node).',
    registers,
    collect() {
      this.set(v?.streams.streams.length ?? 0);
    },
  });
  new Gauge({
    name: 'meshctl_control_map_streams_blocked',
    help: 'Map streams whose socket is not taking data now (a slow or gone node).',
    registers,
    collect() {
      this.set(v?.streams.streams.filter((s) => s.blocked).length ?? 0);
    },
  });
  const fromView = (name: string, help: string, get: (x: ControlMetricsView) => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        if (v) this.inc(get(v));
      },
    });
  };
  // every map written is a whole map (the protocol has no deltas)
  fromView('meshctl_control_map_pushes_total', 'Maps written to map streams (each a full map).', (x) => x.streams.mapsWritten);
  fromView('meshctl_control_map_push_bytes_total', 'Bytes of the maps written to map streams.', (x) => x.streams.mapBytes);
  fromView(
    'meshctl_control_map_pushes_coalesced_total',
    'Maps not written because a newer one replaced them while the stream was blocked.',
    (x) => x.streams.coalesced,
  );
  new Counter({
    name: 'meshctl_control_map_streams_closed_total',
    help: 'Map streams the server closed, by reason: slow (unsent data over the limit) or replaced (the node opened a new one).',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      if (!v) return;
      this.inc({ reason: 'slow' }, v.streams.dropped);
      this.inc({ reason: 'replaced' }, v.streams.replaced);
    },
  });
  new Counter({
    name: 'meshctl_control_rate_limited_requests_total',
    help: 'Requests refused by the per-source rate limits: sealed node requests, or relay verify lookups.',
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      if (!v) return;
      this.inc({ kind: 'sealed' }, v.rateLimit.sealed.refused);
      this.inc({ kind: 'verify' }, v.rateLimit.verify.refused);
    },
  });
  new Gauge({
    name: 'meshctl_control_connections',
    help: 'HTTPS connections open now.',
    registers,
    collect() {
      this.set(v?.connections.open ?? 0);
    },
  });
  new Counter({
    name: 'meshctl_control_connections_refused_total',
    help: 'HTTPS connections refused or closed by the connection limits: over_total, over_source, idle.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      if (!v) return;
      this.inc({ reason: 'over_total' }, v.connections.refusedOverTotal);
      this.inc({ reason: 'over_source' }, v.connections.refusedOverSource);
      this.inc({ reason: 'idle' }, v.connections.closedIdle);
    },
  });

  // fed by the request observer
  const latency = new Histogram({
    name: 'meshctl_control_request_duration_seconds',
    help: 'Time to answer a request, by route (map: until the stream is set up, not its lifetime).',
    labelNames: ['route'],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers,
  });
  const requests = new Counter({
    name: 'meshctl_control_requests_total',
    help: 'Requests answered, by route and HTTP status code.',
    labelNames: ['route', 'code'],
    registers,
  });
  const registrations = new Counter({
    name: 'meshctl_control_registrations_total',
    help: 'Registrations accepted (new nodes and re-registrations).',
    registers,
  });
  const authFailures = new Counter({
    name: 'meshctl_control_auth_failures_total',
    help: 'Requests refused for authentication: bad signature, stale request, or an auth key missing, invalid, used, expired or revoked.',
    labelNames: ['reason'],
    registers,
  });

  const observer: RequestObserver = {
    request(route: ControlRoute, seconds: number, status: number, error: ControlErrorCode | null): void {
      latency.observe({ route }, seconds);
      requests.inc({ route, code: String(status) });
      if (route === 'register' && error === null && status < 400) registrations.inc();
      if (error !== null && AUTH_FAILURES.has(error)) authFailures.inc({ reason: error.toLowerCase() });
    },
  };

  return {
    registry,
    observer,
    contentType: registry.contentType,
    async metrics(): Promise<string> {
      v = read();
      return registry.metrics();
    },
  };
}
