// Imports point one way (docs/architecture.md): cli → daemon → engine → nat/tun.
// The engine, nat, tun, relay and control never import the CLI; servers never
// import the node daemon; netmap (the shapes control and nodes share) is below
// all of them. This test reads the sources and fails on a forbidden import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../src/cli/version.js';

const root = packageRoot();

function files(dir: string): string[] {
  let out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(files(p));
    else if (/\.tsx?$/.test(e)) out.push(p);
  }
  return out;
}

const ALL = ['cli', 'lab', 'daemon', 'control', 'relay', 'engine', 'nat', 'tun', 'dns', 'localapi', 'osdns', 'policy', 'netmap', 'crypto', 'util'];
const FORBIDDEN: Record<string, string[]> = {
  // leaves: shared by everything, depend on nothing of ours
  crypto: ALL.filter((l) => l !== 'crypto'),
  util: ALL.filter((l) => l !== 'util'),
  // shapes shared by control, the daemon, nat and the local API: they build on the leaves only
  netmap: ALL.filter((l) => l !== 'netmap' && l !== 'crypto' && l !== 'util'),
  // the CLI's view of the daemon: it must not pull the daemon or engine into every command
  // (netmap's types only, checked below: they are erased at build)
  localapi: ALL.filter((l) => l !== 'localapi' && l !== 'netmap'),
  engine: ['cli', 'daemon', 'control', 'relay', 'localapi'],
  nat: ['cli', 'daemon', 'control', 'engine', 'localapi'],
  tun: ['cli', 'daemon', 'control', 'relay', 'engine', 'nat'],
  relay: ['cli', 'daemon', 'engine'],
  control: ['cli', 'daemon', 'engine'],
  daemon: ['cli', 'lab'],
  // configuring the host's resolver: below the daemon, beside the engine; parses with util, reads netmap's shapes
  osdns: ALL.filter((l) => l !== 'osdns' && l !== 'netmap' && l !== 'util'),
  // the node's resolver: the daemon wires it in; it builds on the map's shapes and util only
  dns: ALL.filter((l) => l !== 'dns' && l !== 'netmap' && l !== 'util'),
  // the access policy's language and compiler: control uses it; it builds on the map's shapes and util only
  policy: ALL.filter((l) => l !== 'policy' && l !== 'netmap' && l !== 'util'),
  // the lab starts the real binary in namespaces and reads status through the local API's types
  lab: ALL.filter((l) => l !== 'lab' && l !== 'localapi' && l !== 'util'),
};

/** Every relative import of a source file: static `from '…'`, side-effect `import '…'` and dynamic `import('…')`. */
function relativeImports(src: string): string[] {
  return [...src.matchAll(/(?:\bfrom\s+|\bimport\s+|\bimport\(\s*)'(\.[^']+)'/g)].map((m) => m[1]!);
}

test('no module imports a layer above it', () => {
  const bad: string[] = [];
  for (const [layer, banned] of Object.entries(FORBIDDEN)) {
    let list: string[] = [];
    try {
      list = files(join(root, 'src', layer));
    } catch {
      continue;
    }
    for (const f of list) {
      for (const spec of relativeImports(readFileSync(f, 'utf8'))) {
        const top = relative(join(root, 'src'), join(f, '..', spec)).split('/')[0]!;
        if (banned.includes(top)) bad.push(`${relative(root, f)} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

test('the local API types take only types from netmap, so the CLI loads none of its code through them', () => {
  const bad: string[] = [];
  for (const f of files(join(root, 'src', 'localapi'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^import\s+(type\s+)?[^;]*?from\s+'(\.[^']+)'/gm)) {
      const top = relative(join(root, 'src'), join(f, '..', m[2]!)).split('/')[0]!;
      if (top === 'netmap' && !m[1]) bad.push(`${relative(root, f)} imports values from ${m[2]}`);
    }
  }
  assert.deepEqual(bad, []);
});

// Inside the engine, one folder per job: the path selection drives the device,
// the device sends through a bind; the bind knows neither.
const ENGINE_FORBIDDEN: Record<string, string[]> = {
  conn: ['device', 'paths', 'ipc'],
  device: ['paths', 'ipc'],
  ipc: ['paths', 'conn'],
};

test('inside the engine, conn/ imports neither device/ nor paths/, and device/ does not import paths/', () => {
  const engine = join(root, 'src', 'engine');
  const bad: string[] = [];
  for (const [folder, banned] of Object.entries(ENGINE_FORBIDDEN)) {
    for (const f of files(join(engine, folder))) {
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:from\s+|import\(\s*)'(\.[^']+)'/g)) {
        const top = relative(engine, join(f, '..', m[1]!)).split('/')[0]!;
        if (banned.includes(top)) bad.push(`${relative(root, f)} imports ${m[1]}`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

test('the import scan sees static, side-effect and dynamic imports', () => {
  const src = `import { a } from '../daemon/a.js';\nimport '../cli/b.js';\nconst c = await import('../engine/c.js');\nexport { d } from './d.js';`;
  assert.deepEqual(relativeImports(src), ['../daemon/a.js', '../cli/b.js', '../engine/c.js', './d.js']);
});

test('every folder under src/ is a layer the import rules know', () => {
  const folders = readdirSync(join(root, 'src')).filter((e) => statSync(join(root, 'src', e)).isDirectory());
  assert.deepEqual(
    folders.filter((d) => !ALL.includes(d)),
    [],
  );
});

// The admin page (web/admin) runs in a browser: it talks to control over its
// HTTP API only, so no server code may be bundled into it. It may take types
// from src/ (erased at build), nothing else; and nothing in src/ imports it.
test('the admin page imports no code from src/, and src/ does not import the page', () => {
  const bad: string[] = [];
  for (const f of files(join(root, 'web'))) {
    const src = readFileSync(f, 'utf8');
    const typeOnly = new Set([...src.matchAll(/^import\s+type\s+[^;]*?from\s+'(\.[^']+)'/gm)].map((m) => m[1]!));
    for (const spec of relativeImports(src)) {
      if (!relative(root, join(f, '..', spec)).startsWith('web/') && !typeOnly.has(spec)) bad.push(`${relative(root, f)} imports ${spec}`);
    }
  }
  for (const f of files(join(root, 'src'))) {
    for (const spec of relativeImports(readFileSync(f, 'utf8'))) {
      if (relative(root, join(f, '..', spec)).startsWith('web/')) bad.push(`${relative(root, f)} imports ${spec}`);
    }
  }
  assert.deepEqual(bad, []);
});
