// The control server's config file (JSON), for what is awkward as flags: the
// relay map with several relays per region. Flags given on the command line
// are added to it.
//
//   { "relays": [ { "region": "home", "url": "https://relay1:443", "stunPort": 3478 },
//                 { "region": "home", "url": "https://relay2:443", "ipv6": "2001:db8::2" } ],
//     "keyExpiry": "90d", "ephemeralGrace": "30s", "dnsSuffix": "mesh.internal" }
import { readFileSync } from '../util/cjs.js';
import { parseDuration } from '../util/duration.js';
import type { RelayRegion } from '../netmap/types.js';
import { asciiLower, dnsSuffixProblem } from '../netmap/dns-names.js';
import { parseIp } from '../util/netaddr.js';

export interface ControlConfig {
  relays: RelayRegion[];
  keyExpiryMs?: number;
  ephemeralGraceMs?: number;
  /** the DNS suffix of node names, lowercased */
  dnsSuffix?: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadControlConfig(path: string): ControlConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const o = raw as { relays?: unknown; keyExpiry?: unknown; ephemeralGrace?: unknown; dnsSuffix?: unknown };
  const relays: RelayRegion[] = [];
  if (o.relays !== undefined && !Array.isArray(o.relays)) throw new ConfigError(`${path}: "relays" must be a list`);
  for (const [i, r] of ((o.relays as unknown[]) ?? []).entries()) {
    const x = r as { region?: unknown; url?: unknown; stunPort?: unknown; ipv6?: unknown };
    if (typeof x.region !== 'string' || !/^[a-z0-9-]{1,32}$/.test(x.region))
      throw new ConfigError(`${path}: relays[${i}].region must be 1-32 lower-case letters, digits or dashes`);
    if (typeof x.url !== 'string' || !/^https:\/\/[^\s/]+\/?$/.test(x.url)) throw new ConfigError(`${path}: relays[${i}].url must be https://HOST:PORT`);
    const stunPort = x.stunPort === undefined ? 3478 : Number(x.stunPort);
    if (!Number.isInteger(stunPort) || stunPort < 1 || stunPort > 65535) throw new ConfigError(`${path}: relays[${i}].stunPort must be a port number`);
    const region: RelayRegion = { code: x.region, url: x.url.replace(/\/$/, ''), stunPort };
    if (x.ipv6 !== undefined) {
      let ip: ReturnType<typeof parseIp> | null = null;
      try {
        ip = parseIp(x.ipv6);
      } catch {
        /* reported below */
      }
      if (ip?.family !== 6) throw new ConfigError(`${path}: relays[${i}].ipv6 must be an IPv6 address such as "2001:db8::3"`);
      region.ipv6 = ip.text;
    }
    relays.push(region);
  }
  const dur = (k: 'keyExpiry' | 'ephemeralGrace'): number | undefined => {
    if (o[k] === undefined) return undefined;
    const ms = typeof o[k] === 'string' ? parseDuration(o[k] as string) : null;
    if (ms === null) throw new ConfigError(`${path}: "${k}" must be a duration like "90d" or "30s"`);
    return ms;
  };
  let dnsSuffix: string | undefined;
  if (o.dnsSuffix !== undefined) {
    const problem = dnsSuffixProblem(o.dnsSuffix);
    if (problem) throw new ConfigError(`${path}: "dnsSuffix" is not a DNS suffix (${problem}): use a name such as mesh.internal`);
    dnsSuffix = asciiLower(o.dnsSuffix as string);
  }
  return { relays, keyExpiryMs: dur('keyExpiry'), ephemeralGraceMs: dur('ephemeralGrace'), dnsSuffix };
}
