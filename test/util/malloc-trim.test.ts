// glibc's allocator as the daemon sets it (src/util/malloc-trim.ts): with the mmap threshold fixed, big blocks made
// after a bigger one was freed still get mappings of their own and leave when freed, instead of settling in the brk heap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mallocFigures } from '../../src/util/malloc-trim.js';

const MODULE = new URL('../../src/util/malloc-trim.js', import.meta.url).href;

interface Run {
  fixed: boolean;
  /** blocks with their own mapping: before the 16 buffers, with them live, after they were collected */
  before: number;
  live: number;
  freed: number;
  /** their bytes, with the buffers live and after */
  bytesLive: number;
  bytesFreed: number;
  /** brk heap and arenas, bytes: before and with the 16 buffers live */
  arenaBefore: number;
  arenaLive: number;
}

/** A fresh process (glibc's threshold starts at its default): a 4 MiB buffer made and freed, then 16 of 1 MiB. */
function run(fix: boolean): Run {
  const script = `
    const m = await import(${JSON.stringify(MODULE)});
    const fixed = ${fix} ? m.fixMmapThreshold() : false;
    let big = Buffer.allocUnsafeSlow(4 << 20); big.fill(1); big = null; gc(); gc();
    const a = m.mallocFigures();
    let keep = []; for (let i = 0; i < 16; i++) { const b = Buffer.allocUnsafeSlow(1 << 20); b.fill(2); keep.push(b); }
    const b = m.mallocFigures();
    keep = null; gc(); gc();
    const c = m.mallocFigures();
    console.log(JSON.stringify({ fixed, before: a.mmappedBlocks, live: b.mmappedBlocks, freed: c.mmappedBlocks, bytesLive: b.mmappedBytes, bytesFreed: c.mmappedBytes, arenaBefore: a.arenaBytes, arenaLive: b.arenaBytes }));
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Run;
}

test('a fixed mmap threshold: 1 MiB buffers made after a 4 MiB one was freed get mappings of their own, gone once freed', (t) => {
  if (!mallocFigures()) return t.skip('not glibc');
  const fixed = run(true);
  assert.equal(fixed.fixed, true, 'mallopt took the threshold');
  assert.equal(fixed.live - fixed.before, 16, `each buffer has its own mapping: ${JSON.stringify(fixed)}`);
  // at least 15 of them: the last one made may still be referenced from the stack when the collector runs
  assert.ok(fixed.live - fixed.freed >= 15 && fixed.bytesLive - fixed.bytesFreed >= 15 << 20, `they left with their buffers: ${JSON.stringify(fixed)}`);
  assert.ok(fixed.arenaLive - fixed.arenaBefore < 1 << 20, `the brk heap did not take them: ${JSON.stringify(fixed)}`);
  // glibc's own behaviour, which the daemon turns off: the freed 4 MiB block raised the threshold past 1 MiB
  const dynamic = run(false);
  assert.equal(dynamic.live - dynamic.before, 0, `without it they go to the brk heap: ${JSON.stringify(dynamic)}`);
  assert.ok(dynamic.arenaLive - dynamic.arenaBefore >= 16 << 20, JSON.stringify(dynamic));
});

test('malloc figures: the heaps, in use and free, and the mapped blocks', (t) => {
  const m = mallocFigures();
  if (!m) return t.skip('not glibc');
  assert.ok(m.arenaBytes > 0 && m.inUseBytes > 0 && m.inUseBytes <= m.arenaBytes, JSON.stringify(m));
  assert.ok(m.freeBytes >= 0 && m.mmappedBlocks >= 0 && m.mmappedBytes >= 0, JSON.stringify(m));
});
