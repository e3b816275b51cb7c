// Timer values tests shorten, read from the environment so an integration test
// can force e.g. a rekey mid-transfer without waiting 120 s. Unset in normal use.
// The knobs themselves are declared in util/knobs.ts; this maps them onto the
// engine's and the path manager's timer fields.
import type { EngineTimers } from '../engine/device/constants.js';
import type { PathTimers } from '../engine/paths/paths.js';
import { knobMs, knobText, type KnobName } from '../util/knobs.js';
import { parsePrefix } from '../util/netaddr.js';

const KNOBS: Partial<Record<KnobName, keyof EngineTimers>> = {
  MESHCTL_REKEY_AFTER_TIME_MS: 'rekeyAfterTimeMs',
  MESHCTL_REJECT_AFTER_TIME_MS: 'rejectAfterTimeMs',
  MESHCTL_KEEPALIVE_TIMEOUT_MS: 'keepaliveTimeoutMs',
  MESHCTL_REKEY_TIMEOUT_MS: 'rekeyTimeoutMs',
};

export function engineTimersFromEnv(env: NodeJS.ProcessEnv): Partial<EngineTimers> {
  const out: Partial<EngineTimers> = {};
  for (const [name, key] of Object.entries(KNOBS) as [KnobName, keyof EngineTimers][]) {
    const n = knobMs(name, env);
    if (n !== undefined) out[key] = n;
  }
  return out;
}

export interface DaemonKnobs {
  engineTimers: Partial<EngineTimers>;
  pathTimers: Partial<PathTimers>;
  /** quiet time before the daemon hands memory back (util/idle-memory.ts) */
  idleReleaseMs?: number;
  /** peer name → prefixes added to its AllowedIPs here (MESHCTL_TEST_EXTRA_ALLOWED_IPS) */
  extraAllowedIps?: Map<string, string[]>;
}

/** MESHCTL_TEST_EXTRA_ALLOWED_IPS as peer name → canonical prefixes; an entry that does not parse is an error naming the knob. */
export function extraAllowedIpsFromEnv(env: NodeJS.ProcessEnv): Map<string, string[]> | undefined {
  const v = knobText('MESHCTL_TEST_EXTRA_ALLOWED_IPS', env);
  if (v === undefined) return undefined;
  const out = new Map<string, string[]>();
  for (const item of v.split(',')) {
    const eq = item.indexOf('=');
    let prefix: string;
    try {
      prefix = parsePrefix(item.slice(eq + 1)).text;
    } catch {
      throw new Error(`MESHCTL_TEST_EXTRA_ALLOWED_IPS: "${item.slice(0, 80)}" is not NODE=PREFIX`);
    }
    if (eq <= 0) throw new Error(`MESHCTL_TEST_EXTRA_ALLOWED_IPS: "${item.slice(0, 80)}" is not NODE=PREFIX`);
    out.set(item.slice(0, eq), [...(out.get(item.slice(0, eq)) ?? []), prefix]);
  }
  return out;
}

const PATH_KNOBS: Partial<Record<KnobName, keyof PathTimers>> = {
  MESHCTL_PATH_HEARTBEAT_MS: 'heartbeatMs',
  MESHCTL_PATH_TRUST_MS: 'trustMs',
};

export function daemonKnobsFromEnv(env: NodeJS.ProcessEnv): DaemonKnobs {
  const pathTimers: Partial<PathTimers> = {};
  for (const [name, key] of Object.entries(PATH_KNOBS) as [KnobName, keyof PathTimers][]) {
    const n = knobMs(name, env);
    if (n !== undefined) pathTimers[key] = n;
  }
  const idleReleaseMs = knobMs('MESHCTL_IDLE_RELEASE_MS', env);
  return { engineTimers: engineTimersFromEnv(env), pathTimers, idleReleaseMs, extraAllowedIps: extraAllowedIpsFromEnv(env) };
}
