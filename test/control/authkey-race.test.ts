// A single-use auth key presented by several new nodes at once, over real
// HTTPS on separate connections: exactly one registers, every other one gets
// AUTHKEY_USED, and the network holds exactly one node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin } from '../../src/control/admin-client.js';
import { harness, Node, registerBody } from './helpers.js';

const P = '/meshctl/v1';
const CONTENDERS = 2;
const ROUNDS = 5;

test('registrations racing for one single-use key: one wins, the others get AUTHKEY_USED, one node is created', async () => {
  const h = await harness();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const once = (await admin.createAuthKey(h.dir, { reusable: false, ephemeral: false, expiryMs: null })).key;
      const nodes = Array.from({ length: CONTENDERS }, () => new Node(h.server.publicKey!));
      // every request is sealed before any is sent, so they leave as close together as the event loop allows
      const sealed = nodes.map((n, i) => n.seal('register', registerBody(once, `r${round}n${i}`)));
      const replies = await Promise.all(sealed.map((s) => h.post(`${P}/register`, s)));
      const won = replies.filter((r) => r.status === 200);
      const lost = replies.filter((r) => r.status !== 200);
      assert.equal(won.length, 1, `round ${round}: ${JSON.stringify(replies)}`);
      for (const r of lost) {
        assert.equal(r.status, 403, JSON.stringify(r.body));
        assert.equal((r.body.error as { code?: string }).code, 'AUTHKEY_USED');
      }
      const names = (await admin.listNodes(h.dir)).map((n) => n.name).filter((n) => n.startsWith(`r${round}n`));
      assert.equal(names.length, 1, `round ${round}: nodes ${JSON.stringify(names)}`);
    }
  } finally {
    await h.close();
  }
});
