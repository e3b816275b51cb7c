// A policy as `control policy set|check` takes it: parsed, and its tests run.
import { failedTests } from './check.js';
import { PolicyError, parsePolicy } from './parse.js';
import type { Policy } from './types.js';

/** The policy in `text`, or a PolicyError (syntax and fields) or PolicyTestError (its tests fail). */
export function loadPolicy(text: string): Policy {
  const policy = parsePolicy(text);
  const failed = failedTests(policy);
  if (failed.length) throw new PolicyTestError(failed);
  return policy;
}

/** The policy parsed, but a test in it failed: each failure on its own line. */
export class PolicyTestError extends Error {
  override readonly name = 'PolicyTestError';
  constructor(readonly failures: string[]) {
    super(`policy tests failed: ${failures.join('; ')}`);
  }
}

export { PolicyError };
