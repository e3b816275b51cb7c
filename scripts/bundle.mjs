// Bundles the compiled entry points (after `tsc`) so a start loads one or a
// few files instead of dozens of ES modules: Node's ESM loader costs ~40 ms of
// a daemon start and ~25 ms of every CLI command here (docs/performance.md,
// "Tenth session"). The bundles sit next to the modules they replace, in
// dist/src/cli/, so paths built from import.meta.url resolve the same from
// both; bin/meshctl runs a bundle only while it is newer than its module.
// npm packages stay external: they load from node_modules as before.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const cli = join(import.meta.dirname, '..', 'dist', 'src', 'cli');
for (const f of readdirSync(cli)) if (/^chunk-[A-Z0-9]+\.js$/.test(f) || f.endsWith('.bundle.js')) rmSync(join(cli, f));

const common = { bundle: true, platform: 'node', format: 'esm', packages: 'external', logLevel: 'warning', outdir: cli, entryNames: '[name].bundle' };
// the daemon: one file, everything it will ever import of ours
await build({ ...common, entryPoints: [join(cli, 'daemon-entry.js')] });
// the CLI: what every command needs in one file; what only some commands
// import later (the daemon for --foreground, the servers, the lab) in chunks
await build({ ...common, entryPoints: [join(cli, 'main.js')], splitting: true, chunkNames: 'chunk-[hash]' });
