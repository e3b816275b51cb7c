// autoApprovers: the routes and exit node a node advertises are approved
// without an admin when the policy names its owner or one of its tags as an
// approver. They go through the same approval as `control routes approve`
// (the same checks: a route may not capture the control server's or a
// relay's address), so a policy cannot approve what an admin could not.
import { autoApproves } from '../policy/check.js';
import { nodeOwner } from './policy.js';
import type { Registry } from './registry.js';
import { approveRoute, EXIT_PREFIXES, loadProtectedTargets, protectedAddresses } from './routes.js';

/** Approves what the policy's autoApprovers allow of what `nodeIds` advertise; returns one line per approval or refusal. */
export async function autoApprove(r: Registry, nodeIds: Iterable<number>): Promise<string[]> {
  const policy = r.currentPolicy();
  if (!policy || (policy.autoApprovers.routes.length === 0 && policy.autoApprovers.exitNode.length === 0)) return [];
  const out: string[] = [];
  let guard: Awaited<ReturnType<typeof protectedAddresses>> | null = null;
  for (const id of nodeIds) {
    const n = r.nodes().find((x) => x.id === id);
    if (!n || r.isExpired(n)) continue;
    const owner = nodeOwner(n);
    const approved = new Set(
      r
        .approvals()
        .filter((a) => a.nodeId === id)
        .map((a) => a.prefix),
    );
    const wanted = n.advertisedRoutes.filter((p) => !approved.has(p) && autoApproves(policy, p, owner));
    if (n.advertisedExit && !EXIT_PREFIXES.every((p) => approved.has(p)) && autoApproves(policy, 'exit', owner)) wanted.push(EXIT_PREFIXES[0]);
    if (wanted.length === 0) continue;
    guard ??= await protectedAddresses(await loadProtectedTargets(r.store));
    for (const p of wanted) {
      try {
        await approveRoute(r, String(id), p, guard);
        out.push(`auto-approved ${p} for ${n.hostname}`);
      } catch (err) {
        out.push(`not auto-approved ${p} for ${n.hostname}: ${(err as Error).message}`);
      }
    }
  }
  return out;
}
