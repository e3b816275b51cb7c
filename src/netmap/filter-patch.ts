// Packet-filter changes as a patch instead of the whole filter. A node that
// many others may reach (a server every member of a large group reaches) has a
// filter whose sources list every one of them: tens of KB. A join or leave in
// that group changes two of those sources, so control sends the rules that
// changed and, for a rule whose destinations and protocols stayed, only the
// sources removed and added (with their positions, so the node's copy comes
// out exactly as control's, in the same order). Control computes the patch
// (filterPatchOf), the node applies it to the filter it holds
// (applyFilterPatch); a patch that does not fit that filter is refused whole.
import type { FilterRule, FilterPatch, FilterRuleEdit } from './types.js';

/** The patch does not fit the filter the node holds; the cure is a whole map. */
export class FilterPatchError extends Error {
  override readonly name = 'FilterPatchError';
}

/** Rules of `b` are compared by reference first: control's rules share source lists between nodes. */
const sameJson = (a: unknown, b: unknown): boolean => a === b || JSON.stringify(a) === JSON.stringify(b);

/**
 * The sources removed from `a` and added to make `b` (each added one with its
 * position in `b`), or null when a patch cannot say it: a list with a prefix
 * twice, or the sources both keep in another order.
 */
export function sourceEdit(a: readonly string[], b: readonly string[]): { remove: string[]; add: [number, string][] } | null {
  const inA = new Set(a);
  const inB = new Set(b);
  if (inA.size !== a.length || inB.size !== b.length) return null;
  const remove = a.filter((x) => !inB.has(x));
  const add: [number, string][] = [];
  let k = 0;
  const kept = a.filter((x) => inB.has(x));
  for (let j = 0; j < b.length; j++) {
    const x = b[j]!;
    if (!inA.has(x)) add.push([j, x]);
    else if (kept[k++] !== x) return null;
  }
  return { remove, add };
}

/**
 * The last source edit computed from each source list: control's rules share
 * one source list among every node an acl entry reaches, so the hundreds of
 * filters one join changes diff that list once.
 */
const lastEdit = new WeakMap<readonly string[], { to: readonly string[]; edit: ReturnType<typeof sourceEdit> }>();

function sourceEditShared(a: readonly string[], b: readonly string[]): ReturnType<typeof sourceEdit> {
  const memo = lastEdit.get(a);
  if (memo && memo.to === b) return memo.edit;
  const edit = sourceEdit(a, b);
  lastEdit.set(a, { to: b, edit });
  return edit;
}

/**
 * The patch that turns filter `a` into `b`, or null when they are equal. A
 * rule whose sources changed by more than half of them goes whole (a patch
 * would be as large).
 */
export function filterPatchOf(a: readonly FilterRule[], b: readonly FilterRule[]): FilterPatch | null {
  const edits: FilterRuleEdit[] = [];
  for (let i = 0; i < b.length; i++) {
    const rb = b[i]!;
    const ra = a[i];
    if (ra === rb) continue;
    if (!ra || !sameJson(ra.dstPorts, rb.dstPorts) || !sameJson(ra.protocols, rb.protocols)) {
      edits.push({ i, rule: rb });
      continue;
    }
    if (ra.srcIps === rb.srcIps) continue;
    const e = sourceEditShared(ra.srcIps, rb.srcIps);
    if (e === null || e.remove.length + e.add.length > rb.srcIps.length / 2) edits.push({ i, rule: rb });
    else if (e.remove.length || e.add.length) {
      const edit: FilterRuleEdit = { i };
      if (e.remove.length) edit.remove = e.remove;
      if (e.add.length) edit.add = e.add;
      edits.push(edit);
    }
  }
  if (edits.length === 0 && a.length === b.length) return null;
  return { rules: b.length, edits };
}

/**
 * The filter that results from applying `p` to `held` (which is left as it
 * was; unchanged rules are shared), or FilterPatchError when it does not fit:
 * a source edit of a rule the node does not hold, a removal of a source the
 * rule does not list, an addition past the end, or a rule left with no source.
 */
export function applyFilterPatch(held: readonly FilterRule[], p: FilterPatch, maxSources: number): FilterRule[] {
  const out = held.slice(0, p.rules);
  for (const e of p.edits) {
    if (e.i >= p.rules) throw new FilterPatchError(`filter patch edits rule ${e.i} of ${p.rules}`);
    if (e.rule) {
      if (e.i > out.length) throw new FilterPatchError(`filter patch adds rule ${e.i} after ${out.length} rules`);
      out[e.i] = e.rule;
      continue;
    }
    const old = held[e.i];
    if (!old || e.i >= out.length) throw new FilterPatchError(`filter patch edits the sources of rule ${e.i}, which this node does not hold`);
    const remove = new Set(e.remove ?? []);
    const kept = old.srcIps.filter((x) => !remove.has(x));
    if (old.srcIps.length - kept.length !== remove.size) throw new FilterPatchError(`filter patch removes a source rule ${e.i} does not list`);
    const adds = e.add ?? [];
    if (kept.length + adds.length > maxSources) throw new FilterPatchError(`filter patch gives rule ${e.i} more than ${maxSources} sources`);
    const srcIps: string[] = [];
    let k = 0;
    for (const [pos, x] of adds) {
      while (srcIps.length < pos && k < kept.length) srcIps.push(kept[k++]!);
      if (srcIps.length !== pos) throw new FilterPatchError(`filter patch adds source ${x} at ${pos}, past the end of rule ${e.i}`);
      srcIps.push(x);
    }
    while (k < kept.length) srcIps.push(kept[k++]!);
    if (srcIps.length === 0) throw new FilterPatchError(`filter patch leaves rule ${e.i} with no source`);
    if (new Set(srcIps).size !== srcIps.length) throw new FilterPatchError(`filter patch lists a source of rule ${e.i} twice`);
    out[e.i] = { srcIps, dstPorts: old.dstPorts, protocols: old.protocols };
  }
  if (out.length !== p.rules) throw new FilterPatchError(`filter patch leaves ${out.length} rules, not ${p.rules}`);
  for (let i = 0; i < out.length; i++) if (!out[i]) throw new FilterPatchError(`filter patch leaves rule ${i} undefined`);
  return out;
}
