// A well-formed NodeView for tests of the daemon's parsers and of hostile maps:
// node `id` with its two mesh addresses, fresh keys, one endpoint.
import type { NodeView } from '../../src/netmap/types.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';

/** A fresh public key in its text form. */
export const testKey = (): string => keyToText(publicKeyOf(generatePrivateKey()));

export function testNodeView(id: number, o: Partial<NodeView> = {}): NodeView {
  return {
    id,
    name: `node${id}`,
    nodeKey: testKey(),
    discoKey: testKey(),
    addresses: [`100.64.0.${id}`, `fd7a:115c:a1e0::${id}`],
    allowedIps: [`100.64.0.${id}/32`, `fd7a:115c:a1e0::${id}/128`],
    endpoints: [`192.0.2.${id}:41641`],
    homeRelay: null,
    online: true,
    lastSeen: null,
    os: 'linux',
    version: '1.0.0',
    keyExpiry: null,
    ephemeral: false,
    ...o,
  };
}
