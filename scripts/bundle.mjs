// Bundles the compiled entry points (after `tsc`) so a start loads one or a
// few files instead of dozens of ES modules: Node's ESM loader costs ~40 ms of
// a daemon start and ~25 ms of every CLI command here (docs/performance.md,
// "Start-up"). The bundles sit next to the modules they replace, in
// dist/src/cli/, so paths built from import.meta.url resolve the same from
// both; bin/meshctl runs a bundle only while it is newer than its module.
// npm packages stay external: they load from node_modules as before.
import { copyFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const cli = join(import.meta.dirname, '..', 'dist', 'src', 'cli');
for (const f of readdirSync(cli)) if (/^chunk-[A-Z0-9]+\.js$/.test(f) || f.endsWith('.bundle.js')) rmSync(join(cli, f));

// One build for both entry points, with splitting: code they share, and what is
// imported only later (the daemon itself for the lean entry, the servers and
// the lab for the CLI), goes to chunks that are plain ES modules. Without
// splitting, esbuild turns each lazily imported module into an init function
// that assigns its top-level bindings, the hot path's constants among them.
await build({
  entryPoints: [join(cli, 'daemon-entry.js'), join(cli, 'main.js')],
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  packages: 'external',
  logLevel: 'warning',
  outdir: cli,
  entryNames: '[name].bundle',
  chunkNames: 'chunk-[hash]',
});

// The admin page (web/admin, Preact) for browsers: one minified ES module and
// its style sheet, served by the control server from dist/src/control/web/assets
// (src/control/web/static.ts); nothing is loaded from elsewhere.
const web = join(import.meta.dirname, '..', 'web', 'admin');
const assets = join(import.meta.dirname, '..', 'dist', 'src', 'control', 'web', 'assets');
await build({
  entryPoints: { admin: join(web, 'main.tsx') },
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  minify: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: join(web, 'tsconfig.json'),
  logLevel: 'warning',
  outdir: assets,
});
copyFileSync(join(web, 'admin.css'), join(assets, 'admin.css'));
