// Engine files that are loaded by path: worker threads. This module sits one
// folder below src/ both as a module (dist/src/engine/) and inside the CLI's
// bundles (dist/src/cli/), so a URL made here from import.meta.url names the
// same file from either; modules in the engine's sub-folders are one level
// deeper as modules but not in the bundles, so they take their URLs from here.

/** the UDP reader thread (conn/udp-reader-worker.ts) */
export const UDP_READER_WORKER_URL = new URL('../engine/conn/udp-reader-worker.js', import.meta.url);
