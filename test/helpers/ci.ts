// Whether the suite runs in CI: any non-empty CI variable (GitHub Actions and
// GitLab set "true", others "1" or a name). In CI a test that cannot run is a
// failure, never a skip; elsewhere it skips and says so on stderr.
import type { TestContext } from 'node:test';

export function inCI(): boolean {
  return (process.env.CI ?? '') !== '';
}

/** Throws in CI; elsewhere prints a loud notice and returns `why` (for `{ skip }` options or `t.skip`). */
export function skipOutsideCI(what: string, why: string): string {
  if (inCI()) throw new Error(`${what} cannot run in CI: ${why}`);
  process.stderr.write(`\n*** SKIPPING ${what}: ${why}. ***\n`);
  return why;
}

/** `t.skip(why)` outside CI; in CI the test fails with `why`. */
export function skipTest(t: TestContext, what: string, why: string): void {
  t.skip(skipOutsideCI(what, why));
}
