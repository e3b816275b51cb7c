// SQLite's fsyncs, counted and timed: node-sqlite3-wasm calls fs.fsyncSync on the event loop, so each one is time the
// loop stood still waiting for the disk.
import fs from 'node:fs';

/** Wraps fs.fsyncSync for the rest of the process; the returned figures grow with every call. */
export function countFsyncs(): { count: number; ms: number } {
  const fsyncs = { count: 0, ms: 0 };
  const realFsync = fs.fsyncSync;
  fs.fsyncSync = (fd: number) => {
    const t = performance.now();
    try {
      realFsync(fd);
    } finally {
      fsyncs.count++;
      fsyncs.ms += performance.now() - t;
    }
  };
  return fsyncs;
}
