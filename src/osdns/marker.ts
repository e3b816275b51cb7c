// The small JSON record in the state dir saying what meshctl did to the host's
// resolver, so a later run (after a crash or kill -9) can undo it. Read from
// disk, so parsed strictly: a record naming another file is refused.
import { parseIfname } from './plan.js';
import type { Mode } from './resolv-conf.js';

export interface DirectOriginal {
  kind: 'file' | 'symlink';
  /** a symlink's own text, put back exactly */
  target?: string;
  mode: number;
  uid: number;
  gid: number;
  /** sha256 (hex) of the backup's bytes: a damaged backup is never written over resolv.conf */
  sha256: string;
}

export interface Marker {
  v: 1;
  mode: Mode;
  /** the resolv.conf path this record is about */
  path: string;
  /** our own resolver addresses: never an upstream */
  servers: string[];
  /** direct: what the file was */
  original?: DirectOriginal;
  /**
   * direct: how we wrote. `replace`: a regular file at `path` (replacing a symlink there, if any);
   * `through-link`: `path` is a symlink to a mount point (a bind mount in a shared /etc), written in place at `managed`.
   */
  strategy?: 'replace' | 'through-link';
  managed?: string;
  /** direct: sha256 (hex) of the content(s) we wrote; a file with any other content was rewritten by someone else */
  written?: string[];
  /** resolved: the link we configured */
  ifname?: string;
}

/** A marker is a few hundred bytes; a bigger file in its place is not ours. */
export const MAX_MARKER_BYTES = 16 * 1024;

const HEX64 = /^[0-9a-f]{64}$/;
const isStr = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length > 0 && v.length <= max && !v.includes('\0');
const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/** The record, or an error saying what is wrong with it. `path` is the resolv.conf this OsDns manages. */
export function parseMarker(text: string, path: string): Marker {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text);
  } catch {
    throw new Error('not JSON');
  }
  if (!m || typeof m !== 'object' || m.v !== 1) throw new Error('unknown version');
  if (m.path !== path) throw new Error(`it is about ${JSON.stringify(String(m.path).slice(0, 200))}, not ${path}`);
  if (!Array.isArray(m.servers) || m.servers.length > 8 || !m.servers.every((s) => isStr(s, 64))) throw new Error('bad servers');
  if (m.mode === 'resolved') {
    // it becomes a resolvectl argument: the same check as a plan's (no leading `-`)
    return { v: 1, mode: 'resolved', path, servers: m.servers as string[], ifname: parseIfname(m.ifname) };
  }
  if (m.mode !== 'direct') throw new Error('bad mode');
  const o = m.original as Record<string, unknown> | undefined;
  if (!o || (o.kind !== 'file' && o.kind !== 'symlink')) throw new Error('bad original');
  if (o.kind === 'symlink' && !isStr(o.target)) throw new Error('bad symlink target');
  if (!isId(o.mode) || (o.mode as number) > 0o7777 || !isId(o.uid) || !isId(o.gid) || typeof o.sha256 !== 'string' || !HEX64.test(o.sha256))
    throw new Error('bad original');
  if (m.strategy !== 'replace' && m.strategy !== 'through-link') throw new Error('bad strategy');
  if (!isStr(m.managed)) throw new Error('bad managed path');
  if (m.strategy === 'replace' && m.managed !== path) throw new Error('bad managed path');
  if (!Array.isArray(m.written) || m.written.length < 1 || m.written.length > 2 || !m.written.every((h) => typeof h === 'string' && HEX64.test(h)))
    throw new Error('bad written');
  const original: DirectOriginal = { kind: o.kind, mode: o.mode as number, uid: o.uid as number, gid: o.gid as number, sha256: o.sha256 };
  if (o.kind === 'symlink') original.target = o.target as string;
  return { v: 1, mode: 'direct', path, servers: m.servers as string[], original, strategy: m.strategy, managed: m.managed, written: m.written as string[] };
}
