// Timer values tests shorten, read from the environment so an integration test
// can force e.g. a rekey mid-transfer without waiting 120 s. Unset in normal use.
import type { EngineTimers } from '../engine/device/constants.js';
import type { PathTimers } from '../engine/paths/paths.js';

const KNOBS: Record<string, keyof EngineTimers> = {
  MESHCTL_REKEY_AFTER_TIME_MS: 'rekeyAfterTimeMs',
  MESHCTL_REJECT_AFTER_TIME_MS: 'rejectAfterTimeMs',
  MESHCTL_KEEPALIVE_TIMEOUT_MS: 'keepaliveTimeoutMs',
  MESHCTL_REKEY_TIMEOUT_MS: 'rekeyTimeoutMs',
};

export function engineTimersFromEnv(env: NodeJS.ProcessEnv): Partial<EngineTimers> {
  const out: Partial<EngineTimers> = {};
  for (const [name, key] of Object.entries(KNOBS)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}="${v}" must be a positive number of milliseconds`);
    out[key] = n;
  }
  return out;
}

export interface DaemonKnobs {
  engineTimers: Partial<EngineTimers>;
  pathTimers: Partial<PathTimers>;
  /** quiet time before the daemon hands memory back (util/idle-memory.ts) */
  idleReleaseMs?: number;
}

const PATH_KNOBS: Record<string, keyof PathTimers> = {
  MESHCTL_PATH_HEARTBEAT_MS: 'heartbeatMs',
  MESHCTL_PATH_TRUST_MS: 'trustMs',
};

export function daemonKnobsFromEnv(env: NodeJS.ProcessEnv): DaemonKnobs {
  const pathTimers: Partial<PathTimers> = {};
  for (const [name, key] of Object.entries(PATH_KNOBS)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}="${v}" must be a positive number of milliseconds`);
    pathTimers[key] = n;
  }
  const idle = env.MESHCTL_IDLE_RELEASE_MS;
  let idleReleaseMs: number | undefined;
  if (idle !== undefined && idle !== '') {
    idleReleaseMs = Number(idle);
    if (!Number.isFinite(idleReleaseMs) || idleReleaseMs <= 0) throw new Error(`MESHCTL_IDLE_RELEASE_MS="${idle}" must be a positive number of milliseconds`);
  }
  return { engineTimers: engineTimersFromEnv(env), pathTimers, idleReleaseMs };
}
