// Renaming a node from the admin page: the new name must already be a valid
// DNS label (it is refused, not rewritten) and free among nodes and devices,
// which share the name space. The node's requested name is kept, so its next
// registration with the same name keeps the name the admin gave it.
import { ControlError } from '../protocol.js';
import type { Registry } from '../registry.js';
import { sanitizeHostname } from '../registry.js';
import { terminalSafe } from '../../util/text.js';

export async function renameNode(r: Registry, ref: string, rawName: string): Promise<{ id: number; name: string; previous: string }> {
  const name = rawName.trim();
  if (name === '' || sanitizeHostname(name) !== name) {
    throw new ControlError(
      'BAD_REQUEST',
      `"${terminalSafe(rawName, 80)}" is not a node name: lowercase letters, digits and inner hyphens, at most 63 (e.g. web-1)`,
    );
  }
  return r.store.transaction(async (tx) => {
    const n = r.find(ref);
    if (!n) throw new ControlError('NODE_UNKNOWN', `no node ${terminalSafe(ref, 80)}: see \`meshctl control nodes list\``);
    if (n.hostname === name) return { id: n.id, name, previous: n.hostname };
    const taken = (await tx.listNodes()).some((o) => o.id !== n.id && o.hostname === name) || (await tx.listDevices()).some((d) => d.name === name);
    if (taken) throw new ControlError('CONFLICT', `the name ${name} is taken by another node or device: pick another`);
    await tx.updateNode(n.id, { hostname: name });
    return { id: n.id, name, previous: n.hostname };
  });
}
