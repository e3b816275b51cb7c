// The control server of the control-plane bench, in its own process so that
// its CPU time and memory are measured apart from the load generator's. It
// serves the state dir given as argv[2] on loopback and answers the parent's
// messages: 'stats' (map streams' counters) and 'stop'.
import { ControlServer } from '../src/control/server.js';

const dir = process.argv[2]!;
const nodes = Number(process.argv[3]);
// bench-only limits: every simulated node connects from 127.0.0.1, so the per-source caps would refuse most of them
const connections = 2 * nodes + 256;
const server = new ControlServer({
  host: '127.0.0.1',
  port: 0,
  stateDir: dir,
  limits: {
    maxConnections: connections,
    maxConnectionsPerSource: connections,
    sealedRequestsPerSecPerSource: 1_000_000,
    sealedBurstPerSource: 1_000_000,
    // a TLS handshake waits behind broadcasts while thousands of streams open at once
    connectionIdleMs: 120_000,
  },
});
await server.start();
process.send!({ type: 'ready', port: server.boundPort, certPem: server.certPem });
process.on('message', (m: { type: string }) => {
  if (m.type === 'stats') {
    // the counters of map lines written exist only where the server keeps them
    const s = server.mapStreamStats() as { streams: unknown[]; mapsWritten?: number; mapBytes?: number };
    process.send!({ type: 'stats', streams: s.streams.length, mapsWritten: s.mapsWritten ?? null, mapBytes: s.mapBytes ?? null });
  } else if (m.type === 'stop') void server.stop().then(() => process.exit(0));
});
