// The control server of the control-plane bench, in its own process so that
// its CPU time and memory are measured apart from the load generator's. It
// serves the state dir given as argv[2] on loopback (or on the address in argv[5]) and answers the parent's
// messages: 'broadcasts' (each recent broadcast's stage times), 'gc' (a full collection: the heap before and after), 'stats' (map streams' counters, and where its memory is: V8 heap,
// buffers, the bytes written to streams and not yet sent), 'digests' (of the maps control
// would send the given nodes now, through the node's parser) and 'stop'. With
// argv[4], a postgres:// URL (or '' for SQLite), it keeps the network there (one replica of several).
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import { ControlServer } from '../src/control/server.js';
import { parseNetworkMap } from '../src/netmap/parse.js';
import { mapDigest } from './map-digest.js';
import { mallocTrim, nativeMemoryLine } from './native-memory.js';
import { countFsyncs } from './fsync-count.js';

const fsyncs = countFsyncs();

/** Maps built at once for the check (each up to a few hundred KB as objects). */
const DIGEST_BATCH = 25;
const dir = process.argv[2]!;
const nodes = Number(process.argv[3]);
const dbUrl = process.argv[4];
// bench-only limits: every simulated node connects from 127.0.0.1, so the per-source caps would refuse most of them
const connections = 2 * nodes + 256;
const server = new ControlServer({
  host: process.argv[5] || '127.0.0.1',
  port: 0,
  stateDir: dir,
  ...(dbUrl ? { db: { url: dbUrl } } : {}),
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
// MESHCTL_BENCH_HEAP_PROFILE=<file>: a sampling heap profile from the second 'stats' (after the policy set, before the
// churn) to the 'gc' message, of what outlived the young generation: objects a scavenge freed are left out, those
// that lived until a mark-compact are kept, so the profile shows what is promoted to old space and then dies there
const heapProfileFile = process.env.MESHCTL_BENCH_HEAP_PROFILE;
let statsSeen = 0;
let heapSession: Session | null = null;
process.on('message', (m: { type: string; ids?: number[] }) => {
  if (m.type === 'stats' && heapProfileFile && ++statsSeen === 2) {
    heapSession = new Session();
    heapSession.connect();
    void heapSession.post('HeapProfiler.startSampling', {
      samplingInterval: 64 * 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: false,
    });
  }
  if (m.type === 'gc' && heapSession) {
    const session = heapSession;
    heapSession = null;
    void session.post('HeapProfiler.stopSampling').then(({ profile }) => {
      fs.writeFileSync(heapProfileFile!, JSON.stringify(profile));
      session.disconnect();
    });
  }
  if (m.type === 'stats') {
    // where the native memory is (stderr, beside the bench's own lines); MESHCTL_BENCH_TRIM=1: then malloc_trim(0), and again
    console.error(`  control native memory: ${nativeMemoryLine()}; RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
    console.error(`  control fsyncs so far: ${fsyncs.count}, ${(fsyncs.ms / 1000).toFixed(2)} s of event loop`);
    if (process.env.MESHCTL_BENCH_TRIM === '1') {
      mallocTrim();
      console.error(`  after malloc_trim(0): ${nativeMemoryLine()}; RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
    }
    // the counters of map lines written exist only where the server keeps them
    const s = server.mapStreamStats() as {
      streams: unknown[];
      mapsWritten?: number;
      mapBytes?: number;
      deltasWritten?: number;
      deltaBytes?: number;
      deltaResyncs?: number;
    };
    process.send!({
      type: 'stats',
      streams: s.streams.length,
      mapsWritten: s.mapsWritten ?? null,
      mapBytes: s.mapBytes ?? null,
      deltasWritten: s.deltasWritten ?? null,
      deltaBytes: s.deltaBytes ?? null,
      deltaResyncs: s.deltaResyncs ?? null,
      deferredFirstMaps: (s as { deferredFirstMaps?: number }).deferredFirstMaps ?? null,
      deferredWholeMaps: (s as { deferredWholeMaps?: number }).deferredWholeMaps ?? null,
      peakWholeMapBytesInFlight: (s as { peakWholeMapBytesInFlight?: number }).peakWholeMapBytesInFlight ?? null,
      unsentBytes: (s.streams as { unsentBytes: number }[]).reduce((a, x) => a + x.unsentBytes, 0),
      ...process.memoryUsage(),
    });
  } else if (m.type === 'gc') {
    // a full collection (the bench forks control with --expose-gc): what the V8 heap holds live, apart from garbage not yet collected
    const before = process.memoryUsage();
    (globalThis as { gc?: () => void }).gc?.();
    const after = process.memoryUsage();
    process.send!({ type: 'gc', before: before.heapUsed, after: after.heapUsed, rssBefore: before.rss, rssAfter: after.rss });
  } else if (m.type === 'broadcasts') {
    // each broadcast's stage times (server.ts BroadcastTiming), to split a change's propagation by stage
    // (none where the server does not keep them)
    const timings = (server as { broadcastTimings?: () => unknown[] }).broadcastTimings?.() ?? [];
    process.send!({ type: 'broadcasts', timings });
  } else if (m.type === 'digests') {
    // a few maps at a time: this is the bench's own work, and 500 whole maps built at once would raise control's peak RSS
    const ids = m.ids ?? [];
    const digests: [number, string][] = [];
    for (let i = 0; i < ids.length; i += DIGEST_BATCH) {
      const maps = server.mapsNow(ids.slice(i, i + DIGEST_BATCH));
      for (const [id, map] of maps) digests.push([id, mapDigest(parseNetworkMap(JSON.parse(JSON.stringify(map))))]);
    }
    process.send!({ type: 'digests', digests });
  } else if (m.type === 'stop') void server.stop().then(() => process.exit(0));
});
