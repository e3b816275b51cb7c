// Who owns a node and what it is tagged with, as maps and the access policy
// name them: user names are plain lower-case words (`alice`, `bob.smith`),
// tags are `tag:NAME`. Both end up in status output, DNS-like lookups and
// policy selectors, so they are kept to a small ASCII alphabet with no `:`
// in a user name (a policy's `alice:22` splits at the last colon).

/** A user name: long enough for `first.last-team`, short enough to show in a status table. */
export const MAX_USER_NAME_CHARS = 64;
/** A tag, `tag:` included. */
export const MAX_TAG_CHARS = 64;
/** Tags on one node: a handful in practice; bounds the policy's per-node work. */
export const MAX_TAGS_PER_NODE = 16;

const USER_RE = /^[a-z0-9][a-z0-9._-]*$/;
const TAG_RE = /^tag:[a-z0-9][a-z0-9_-]*$/;

/** Why `v` is not a user name, or null when it is one. */
export function userNameProblem(v: unknown): string | null {
  if (typeof v !== 'string') return 'not a string';
  if (v.length === 0 || v.length > MAX_USER_NAME_CHARS) return `a user name is 1-${MAX_USER_NAME_CHARS} characters`;
  if (!USER_RE.test(v)) return 'a user name is lower-case letters, digits, ".", "_" and "-", starting with a letter or digit';
  return null;
}

/** Why `v` is not a tag, or null when it is one. */
export function tagProblem(v: unknown): string | null {
  if (typeof v !== 'string') return 'not a string';
  if (v.length > MAX_TAG_CHARS) return `a tag is at most ${MAX_TAG_CHARS} characters`;
  if (!TAG_RE.test(v)) return 'a tag is "tag:" then lower-case letters, digits, "_" and "-"';
  return null;
}
