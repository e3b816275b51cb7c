// A node row for store tests and benches: node `i`'s keys, hostname h<i> and addresses, the rest fixed; `extra`
// overrides any field.
import type { NewNode } from '../../src/control/store.js';

export const storeNode = (i: number, extra: Partial<NewNode> = {}): NewNode => ({
  nodeKey: `nk${i}`,
  discoKey: `dk${i}`,
  hostname: `h${i}`,
  requestedHostname: `h${i}`,
  os: 'linux',
  version: '1',
  ipv4: `100.64.${i >> 8}.${i & 255}`,
  ipv6: `fd00::${i}`,
  endpoints: ['192.0.2.1:41641'],
  homeRelay: null,
  ephemeral: false,
  authKeyId: 'k',
  createdAtMs: 1000 + i,
  lastSeenMs: null,
  keyExpiresAtMs: null,
  connected: false,
  ...extra,
});
