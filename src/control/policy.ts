// The network's access policy at control: its text in the store (meta key
// `acl_policy`), `control policy get|set|check`, and the owner and tags the
// policy sees for a node. No stored policy: allow all, and maps carry no
// packet filter. A policy that does not parse or whose tests fail is refused
// whole and the one in force stays.
import { ControlError } from './protocol.js';
import type { Registry } from './registry.js';
import type { NodeRecord } from './store.js';
import { loadPolicy, PolicyError, PolicyTestError } from '../policy/load.js';
import type { Policy } from '../policy/types.js';
import { isoTime } from '../util/time.js';

const POLICY_KEY = 'acl_policy';
const POLICY_TIME_KEY = 'acl_policy_set_at_ms';

/** The owner and tags of a node, as the auth key that registered it gave them (none: an untagged node with no owner). */
export function nodeOwner(n: NodeRecord): { user: string | null; tags: string[] } {
  return { user: n.user, tags: n.tags };
}

/** The stored policy's text, or null (allow all). */
export function storedPolicyText(r: Registry): Promise<string | null> {
  return r.store.getMeta(POLICY_KEY);
}

/** Parses and tests `text`; a refusal is a BAD_REQUEST whose message names the field and line:col (or the failing tests). */
export function checkPolicy(text: string): Policy {
  try {
    return loadPolicy(text);
  } catch (err) {
    if (err instanceof PolicyError || err instanceof PolicyTestError) throw new ControlError('BAD_REQUEST', err.message);
    throw err;
  }
}

export interface PolicyShow {
  /** null: no policy, every node may reach every other */
  text: string | null;
  setAt: string | null;
}

export async function getPolicy(r: Registry): Promise<PolicyShow> {
  const at = await r.store.getMeta(POLICY_TIME_KEY);
  return { text: await storedPolicyText(r), setAt: at === null ? null : isoTime(Number(at)) };
}

/** Replaces the policy after checking it; maps change with the next broadcast. */
export async function setPolicy(r: Registry, text: string, nowMs = Date.now()): Promise<{ acls: number; tests: number }> {
  const policy = checkPolicy(text);
  await r.store.transaction(async (tx) => {
    await tx.setMeta(POLICY_KEY, text);
    await tx.setMeta(POLICY_TIME_KEY, String(nowMs));
  });
  return { acls: policy.acls.length, tests: policy.tests.length };
}
