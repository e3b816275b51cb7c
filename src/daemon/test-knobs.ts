// Timer values tests shorten, read from the environment so an integration test
// can force e.g. a rekey mid-transfer without waiting 120 s. Unset in normal use.
import type { EngineTimers } from '../engine/constants.js';

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
