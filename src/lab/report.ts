// What `lab up` and `lab status` print: each node, its NAT, and its status table.
import type { Status } from '../localapi/types.js';
import type { Lab } from './lab.js';
import { NAT_DESCRIPTION } from './topology.js';

export async function nodeStatus(l: Lab, i: number): Promise<Status | null> {
  const r = await l.meshctl(l.s.nodes[i]!, ['status', '--json']);
  return r.code === 0 ? (JSON.parse(r.out) as Status) : null;
}

export async function allPathsKnown(l: Lab): Promise<boolean> {
  for (let i = 0; i < l.s.nodes.length; i++) {
    const s = await nodeStatus(l, i);
    if (!s || s.peers.length < l.s.nodes.length - 1 || s.peers.some((p) => p.online && p.path.kind === 'none')) return false;
  }
  return true;
}

export async function printLabStatus(l: Lab): Promise<string> {
  let out = '';
  for (const n of l.s.nodes) {
    const where = n.routerNs ? `${n.lanIp} behind ${n.wanIp}` : n.wanIp;
    out += `\n== ${n.name} (${where}): ${NAT_DESCRIPTION[n.kind]}\n`;
    const r = await l.meshctl(n, ['status']);
    out += r.code === 0 ? r.out : `   ${r.err.trim()}\n`;
  }
  return out;
}
