// What `npm pack` ships: the binary, the built code (modules and bundles, no
// source maps of sources that are not shipped), the man pages and the Debian
// list the lab reads; never tests, benchmarks, CI files, docs or sources.
// Then the real tarball, unpacked next to the dependencies as npm would
// install them, runs: `meshctl --version` and `meshctl completion bash`.
// (`npm install --offline` of the tarball needs every dependency in npm's
// cache, which a checkout need not have, so the test links node_modules.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import { findTool } from '../../src/util/tools.js';

const root = packageRoot();
/** npm pack reads and gzips ~300 files: seconds on a busy machine. */
const NPM_TIMEOUT_MS = 120_000;

interface PackResult {
  filename: string;
  files: { path: string }[];
}

function npmPack(args: string[]): PackResult {
  // --ignore-scripts: `prepare` would rebuild dist/ from under the running suite
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', ...args], { cwd: root, encoding: 'utf8', timeout: NPM_TIMEOUT_MS });
  return (JSON.parse(out) as PackResult[])[0]!;
}

test('npm pack: bin, built code, man pages and deps/debian.json; no tests, bench, CI, docs, sources or maps', {
  skip: !findTool('npm') && 'npm is not on PATH',
}, () => {
  const files = npmPack(['--dry-run']).files.map((f) => f.path);
  const has = (p: string): boolean => files.includes(p);
  for (const p of ['package.json', 'README.md', 'bin/meshctl', 'deps/debian.json', 'dist/src/cli/main.js', 'dist/src/cli/daemon-entry.js']) {
    assert.ok(has(p), `${p} is not in the package`);
  }
  for (const m of readdirSync(join(root, 'man'))) assert.ok(has(`man/${m}`), `man/${m} is not in the package`);
  if (existsSync(join(root, 'dist/src/cli/main.bundle.js'))) assert.ok(has('dist/src/cli/main.bundle.js'), 'the CLI bundle');
  for (const a of ['admin.js', 'admin.css']) {
    if (existsSync(join(root, 'dist/src/control/web/assets', a))) assert.ok(has(`dist/src/control/web/assets/${a}`), `the admin page's ${a}`);
  }
  const bad = files.filter(
    (p) =>
      /^(test|bench|docs|scripts|src|\.ci|\.github|node_modules)\//.test(p) ||
      p.startsWith('dist/test/') ||
      p.startsWith('dist/bench/') ||
      p.endsWith('.map') ||
      p.endsWith('.ts') ||
      /\.test\.js$/.test(p) ||
      ['tsconfig.json', 'biome.jsonc', 'package-lock.json'].includes(p),
  );
  assert.deepEqual(bad, [], 'files that have no place in the package');
  // every module shipped has its source: a module left in dist/ by an older build is not shipped stale
  const stale = files.filter(
    (p) =>
      /^dist\/src\/.*\.js$/.test(p) &&
      !/\.bundle\.js$|\/chunk-[A-Z0-9]+\.js$/.test(p) &&
      // the admin page's browser bundle, built from web/admin by scripts/bundle.mjs
      p !== 'dist/src/control/web/assets/admin.js' &&
      !existsSync(join(root, p.replace(/^dist\//, '').replace(/\.js$/, '.ts'))),
  );
  assert.deepEqual(stale, [], 'modules in dist/ without a source: rm -rf dist && npm run build');
});

test('npm pack: the tarball, unpacked beside its dependencies, runs meshctl', { skip: (!findTool('npm') || !findTool('tar')) && 'needs npm and tar' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-pack-'));
  try {
    const { filename } = npmPack(['--pack-destination', dir]);
    execFileSync('tar', ['-xzf', join(dir, filename), '-C', dir]);
    const pkg = join(dir, 'package');
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
    const v = spawnSync(join(pkg, 'bin', 'meshctl'), ['--version'], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
    const c = spawnSync(join(pkg, 'bin', 'meshctl'), ['completion', 'bash'], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /complete -F _meshctl meshctl/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
