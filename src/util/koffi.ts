// koffi through require: its ESM entry imports node:fs and node:util as ESM,
// which evaluates every lazy export of them (see ./cjs.js). A module of its own
// because loading the native addon costs ~14 ms, which CLI commands that never
// call C should not pay.
import type * as Koffi from 'koffi';
import { cjsRequire } from './cjs.js';

export const koffi = cjsRequire('koffi') as typeof Koffi;
