// The engines the bench runs as pairs: meshctl, upstream wireguard-go (the
// reference: the build with Linux TUN and UDP offloads that users get from
// upstream) and Debian's wireguard-go (an older build without them, kept as a
// second column). Finds the binaries and reads their versions.
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { WgKind } from '../test/helpers/wg-peer.js';

export const UPSTREAM_DEFAULT_PATH = '/usr/local/bin/wireguard-go-upstream';
export const DEBIAN_DEFAULT_PATH = '/usr/bin/wireguard-go';
export const UPSTREAM_VERSION = 'v0.0.20250522';

export interface BenchEngine {
  /** key in results and JSON */
  id: 'meshctl' | 'upstream' | 'debian';
  /** column label */
  label: string;
  kind: WgKind;
  /** wireguard-go only: the binary */
  binary?: string;
  /** wireguard-go only: what `--version` said */
  version?: string;
}

export const MESHCTL: BenchEngine = { id: 'meshctl', label: 'meshctl', kind: 'meshctl' };

/** How to get the reference binary when it is missing. */
export const UPSTREAM_BUILD_HINT =
  `build it with the build script shipped with the lab tools (wireguard-go-upstream/build.sh, run as root), or: build upstream ` +
  `wireguard-go ${UPSTREAM_VERSION.slice(1)} with Go and install it as ${UPSTREAM_DEFAULT_PATH} (or pass --reference PATH)`;

/** "wireguard-go v0.0.20250522\n\nUserspace …" → "v0.0.20250522"; null when the text is not wireguard-go's. */
export function parseWgVersion(text: string): string | null {
  return /^wireguard-go (v\d+\.\d+\.\d+)\b/m.exec(text)?.[1] ?? null;
}

/** The version of the wireguard-go at `path`, or why there is none. */
export function probeWireguardGo(path: string): { version: string } | { missing: string } {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    return { missing: `${path} is not there or not executable` };
  }
  try {
    const out = execFileSync(path, ['--version'], { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'pipe'] });
    const v = parseWgVersion(out);
    return v ? { version: v } : { missing: `${path} --version did not name a wireguard-go version` };
  } catch (err) {
    return { missing: `${path} --version failed: ${(err as Error).message.split('\n')[0]}` };
  }
}

export interface EngineSet {
  /** meshctl first, then the reference and Debian's build, each when found */
  engines: BenchEngine[];
  upstream: BenchEngine | null;
  debian: BenchEngine | null;
  /** one line per binary: found with its version, or missing and how to get it */
  header: string[];
}

export function findEngines(upstreamPath = UPSTREAM_DEFAULT_PATH, debianPath = DEBIAN_DEFAULT_PATH): EngineSet {
  const header: string[] = [];
  const up = probeWireguardGo(upstreamPath);
  let upstream: BenchEngine | null = null;
  if ('version' in up) {
    upstream = { id: 'upstream', label: `wireguard-go upstream (${up.version.slice(1)})`, kind: 'wireguard-go', binary: upstreamPath, version: up.version };
    const note = up.version === UPSTREAM_VERSION ? '' : ` (the figures in docs/performance.md are for ${UPSTREAM_VERSION})`;
    header.push(`reference: upstream wireguard-go ${up.version} at ${upstreamPath}${note}`);
  } else {
    header.push(`reference: upstream wireguard-go MISSING: ${up.missing}; ${UPSTREAM_BUILD_HINT}. Continuing with the columns found.`);
  }
  const deb = probeWireguardGo(debianPath);
  let debian: BenchEngine | null = null;
  if ('version' in deb) {
    debian = { id: 'debian', label: `wireguard-go (Debian ${deb.version.slice(1)})`, kind: 'wireguard-go', binary: debianPath, version: deb.version };
    header.push(`second column: Debian's wireguard-go ${deb.version} at ${debianPath}`);
  } else {
    header.push(`second column: Debian's wireguard-go missing (${deb.missing}; apt-get install wireguard-go)`);
  }
  return { engines: [MESHCTL, ...(upstream ? [upstream] : []), ...(debian ? [debian] : [])], upstream, debian, header };
}
