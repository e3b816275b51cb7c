// Node's builtins loaded through require, not ESM import. An ESM import of a
// builtin evaluates every lazy export of it (node:fs's `promises` pulls in
// fs/promises, readline, streams and fs watchers): ~1.4 MB of a daemon's idle
// RSS for nothing (docs/performance.md, "Idle memory"). koffi is in
// ./koffi.js, so a CLI command that only reads files does not load it.
import { createRequire } from 'node:module';
import type * as Fs from 'node:fs';

export const cjsRequire = createRequire(import.meta.url);

const fs = cjsRequire('node:fs') as typeof Fs;
export const {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
  writevSync,
} = fs;
