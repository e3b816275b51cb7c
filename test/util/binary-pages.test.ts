// Dropping the node binary's cold pages at the idle release (src/util/binary-pages.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { cleanMappings, dropBinaryPages } from '../../src/util/binary-pages.js';
import { releaseMemory } from '../../src/util/idle-memory.js';

const block = (range: string, perms: string, path: string, anonKb: number, swapKb = 0): string =>
  `${range} ${perms} 00000000 08:01 1234                       ${path}\nSize:               1024 kB\nRss:                 512 kB\nAnonymous:          ${anonKb} kB\nSwap:               ${swapKb} kB\nVmFlags: rd ex mr mw me dw`;

test('only read-only mappings of the binary whose every page is the file’s own are chosen', () => {
  const exe = '/usr/bin/node';
  const smaps = [
    block('00400000-00500000', 'r--p', exe, 0),
    block('00500000-01500000', 'r-xp', exe, 0),
    block('01500000-01600000', 'r--p', exe, 8), // RELRO: written by the loader, then made read-only
    block('01600000-01700000', 'rw-p', exe, 92),
    block('01700000-01800000', 'r--p', exe, 0, 4), // a page of it is in swap
    block('7f0000000000-7f0000100000', 'r-xp', '/usr/lib/x86_64-linux-gnu/libc.so.6', 0),
    block('7f0000200000-7f0000300000', 'rw-p', '', 64),
    // no Anonymous/Swap lines (a kernel that does not report them): not known clean, so kept
    '01800000-01900000 r-xp 00000000 08:01 1234                       /usr/bin/node\nSize:               1024 kB\nRss:                 512 kB',
  ].join('\n');
  assert.deepEqual(cleanMappings(smaps, exe), [
    { start: 0x400000n, length: 0x100000n },
    { start: 0x500000n, length: 0x1000000n },
  ]);
});

test('the idle release drops the binary’s pages: file-backed RSS shrinks and the process runs on unchanged', (t) => {
  if (process.platform !== 'linux') return t.skip('Linux only: the daemon keeps those pages elsewhere');
  const fileKb = (): number => Number(/RssFile:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
  const digest = (): string =>
    createHash('sha256')
      .update(JSON.stringify({ a: [1, 2, 3], b: 'x'.repeat(100) }))
      .digest('hex');
  const expected = digest();
  const before = fileKb();
  assert.ok(releaseMemory());
  const after = fileKb();
  // how much goes depends on the Node binary's size and what of it was resident: a figure for the log, not a limit
  process.stderr.write(`file-backed RSS after the release: ${before} → ${after} kB\n`);
  assert.ok(after < before, `file-backed RSS ${before} → ${after} kB`);
  const dropped = dropBinaryPages();
  assert.ok(dropped !== null && dropped > 0n, 'clean mappings of the binary were found');
  // the code and read-only data come back from the page cache as they were
  assert.equal(digest(), expected);
  assert.ok(fileKb() > after, 'pages fault back in as they are used');
});
