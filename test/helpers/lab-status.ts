// What lab tests read from a node's `meshctl status --json`: the whole status
// (a failing command fails the test with its stderr) and the path to a peer.
import assert from 'node:assert/strict';
import type { Lab } from '../../src/lab/lab.js';
import type { LabNode } from '../../src/lab/topology.js';
import type { Status } from '../../src/localapi/types.js';

export async function nodeStatus(l: Lab, n: LabNode): Promise<Status> {
  const r = await l.meshctl(n, ['status', '--json']);
  assert.equal(r.code, 0, `${n.name}: ${r.err}`);
  return JSON.parse(r.out) as Status;
}

/** `from`'s path to `to` as its status shows it; kind `none` while `to` is not among its peers. */
export async function pathTo(l: Lab, from: LabNode, to: LabNode) {
  return (await nodeStatus(l, from)).peers.find((p) => p.name === to.name)?.path ?? { kind: 'none' as const };
}
