// What a policy allows between identities, without any node: its `tests`
// section is checked this way before the policy is accepted (also offline, by
// `control policy check`), and autoApprovers are matched against a node's
// owner and tags.
import { within } from './compile.js';
import type { Acl, Policy, PolicyTest, Selector } from './types.js';

const TCP = 6;

/** Whether an acl source selector covers a test's source (one user, tag or prefix). */
function srcCovers(sel: Selector, who: Selector): boolean {
  switch (sel.kind) {
    case 'all':
      return true;
    case 'user':
      return who.kind === 'user' && who.name === sel.name;
    case 'tag':
      return who.kind === 'tag' && who.name === sel.name;
    case 'member':
      return who.kind === 'user';
    case 'tagged':
      return who.kind === 'tag';
    case 'prefix':
      return who.kind === 'prefix' && within(who.prefix, sel.prefix);
    case 'self':
      return false;
  }
}

/** Whether an acl destination selector covers a test's destination, `src` being the test's source. */
function dstCovers(sel: Selector, dst: Selector, src: Selector): boolean {
  if (sel.kind === 'self') return src.kind === 'user' && dst.kind === 'user' && src.name === dst.name;
  return srcCovers(sel, dst);
}

function allows(acl: Acl, src: Selector, dst: Selector, port: number): boolean {
  if (acl.protocols.length && !acl.protocols.includes(TCP)) return false;
  if (!acl.src.some((s) => srcCovers(s, src))) return false;
  return acl.dst.some((d) => dstCovers(d.selector, dst, src) && d.ports.some((p) => p.first <= port && port <= p.last));
}

/** Whether the policy lets `src` open a TCP connection to `dst` on `port`. */
export function policyAllows(policy: Policy, src: Selector, dst: Selector, port: number): boolean {
  return policy.acls.some((a) => allows(a, src, dst, port));
}

function name(s: Selector): string {
  return s.kind === 'user' || s.kind === 'tag' ? s.name : s.kind === 'prefix' ? s.prefix : s.kind;
}

/** The failures of the policy's tests, one line each (`tests[0]: alice -> tag:nas:5432 is accepted, the test says deny`). */
export function failedTests(policy: Policy): string[] {
  const out: string[] = [];
  policy.tests.forEach((t: PolicyTest, i) => {
    for (const d of t.accept)
      if (!policyAllows(policy, t.src, d.selector, d.port)) out.push(`tests[${i}]: ${name(t.src)} -> ${d.text} is denied, the test says accept`);
    for (const d of t.deny)
      if (policyAllows(policy, t.src, d.selector, d.port)) out.push(`tests[${i}]: ${name(t.src)} -> ${d.text} is accepted, the test says deny`);
  });
  return out;
}

/** Whether one of `approvers` names a node with this owner and tags (a tagged node by its tags, an owned one by its user). */
export function approvedBy(approvers: readonly Selector[], owner: { user: string | null; tags: readonly string[] }): boolean {
  return approvers.some((a) => (a.kind === 'tag' ? owner.tags.includes(a.name) : a.kind === 'user' ? owner.tags.length === 0 && owner.user === a.name : false));
}

/** Whether autoApprovers approve `prefix` (inside one of its routes) or the exit node (`exit`) for a node with this owner and tags. */
export function autoApproves(policy: Policy, what: string | 'exit', owner: { user: string | null; tags: readonly string[] }): boolean {
  if (what === 'exit') return approvedBy(policy.autoApprovers.exitNode, owner);
  return policy.autoApprovers.routes.some((r) => within(what, r.prefix) && approvedBy(r.approvers, owner));
}
