// Subnet routes and exit nodes at the control server, over real HTTPS and the
// admin socket on loopback: what a node may advertise, approval and rejection,
// which routes reach the maps (active = advertised ∩ approved, only the
// primary's in allowedIps), primary election with failover and no move back,
// and the refusal of prefixes that would capture control's or a relay's address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { admin } from '../../src/control/admin-client.js';
import { createAuthKey } from '../../src/control/authkeys.js';
import { ControlError } from '../../src/control/protocol.js';
import { Registry } from '../../src/control/registry.js';
import { approveRoute, MAX_APPROVALS_PER_NODE, protectedAddresses, rejectRoute } from '../../src/control/routes.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { stateFiles } from '../../src/control/state-dir.js';
import { MAX_ADVERTISED_ROUTES } from '../../src/control/validate.js';
import { parseRegisterResult } from '../../src/netmap/parse.js';
import type { NodeView } from '../../src/netmap/types.js';
import { harness, latestMap, Node, openStream, registerBody, tempDir, until, type Harness, type OpenStream } from './helpers.js';

const P = '/meshctl/v1';

const latest = latestMap;

const peer = (s: OpenStream, name: string): NodeView | undefined => latest(s)?.peers.find((p) => p.name === name);

async function join(h: Harness, name: string, advertised?: { routes: string[]; exitNode: boolean }): Promise<Node> {
  const n = new Node(h.server.publicKey!);
  const r = await h.post(`${P}/register`, n.seal('register', { ...registerBody(await h.authKey(), name), ...(advertised ? { advertised } : {}) }));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return n;
}

const advertise = (h: Harness, n: Node, routes: unknown, exitNode: unknown = false) => h.post(`${P}/advertise`, n.seal('advertise', { routes, exitNode }));

function badRequest(r: { status: number; body: Record<string, unknown> }, re: RegExp): void {
  const err = r.body.error as { code: string; message: string };
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(err.code, 'BAD_REQUEST');
  assert.ok(!err.message.includes('\n'));
  assert.match(err.message, re);
}

test('advertise: canonical prefixes only, bounded, never the mesh, the default route or special blocks; nothing stored on refusal', async () => {
  const h = await harness();
  try {
    const n = await join(h, 'router');
    badRequest(await advertise(h, n, ['192.168.1.1/24']), /routes\[0\]: 192\.168\.1\.1\/24 has host bits set: the prefix is 192\.168\.1\.0\/24/);
    badRequest(await advertise(h, n, ['0.0.0.0/0']), /default route: advertise an exit node instead/);
    badRequest(await advertise(h, n, ['::/0']), /default route/);
    badRequest(await advertise(h, n, ['100.64.0.0/24']), /overlaps the mesh prefix 100\.64\.0\.0\/10/);
    badRequest(await advertise(h, n, ['100.0.0.0/8']), /overlaps the mesh prefix/);
    badRequest(await advertise(h, n, ['127.0.0.0/8']), /loopback/);
    badRequest(await advertise(h, n, ['169.254.0.0/16']), /link-local/);
    badRequest(await advertise(h, n, ['fe80::/10']), /link-local/);
    badRequest(await advertise(h, n, ['224.0.0.0/4']), /multicast/);
    badRequest(await advertise(h, n, ['10.0.0.0/33']), /bits must be 0-32/);
    badRequest(await advertise(h, n, ['10.0.0.0']), /no \/bits/);
    badRequest(await advertise(h, n, '10.0.0.0/8'), /must be a list/);
    badRequest(await advertise(h, n, [], 'yes'), /exitNode must be true or false/);
    const many = Array.from({ length: MAX_ADVERTISED_ROUTES + 1 }, (_, i) => `10.${i}.0.0/16`);
    badRequest(await advertise(h, n, many), new RegExp(`at most ${MAX_ADVERTISED_ROUTES}`));
    // the ULA /48 of this network
    const s = await openStream(h, n);
    await until(() => latest(s) !== undefined, 5000, 'first map');
    const ula = latest(s)!.ipv6Prefix.replace('::/48', ':1::/64');
    badRequest(await advertise(h, n, [ula]), /overlaps the mesh prefix/);
    // in the register request too
    const m = new Node(h.server.publicKey!);
    badRequest(
      await h.post(`${P}/register`, m.seal('register', { ...registerBody(await h.authKey(), 'x'), advertised: { routes: ['10.0.0.1/8'], exitNode: false } })),
      /register\.advertised\.routes\[0\]: .*host bits/,
    );
    assert.deepEqual(await admin.listRoutes(h.dir), [], 'nothing stored');
    // a valid one in the register request is stored, and the answer says what control holds
    const ok = await h.post(
      `${P}/register`,
      m.seal('register', { ...registerBody(await h.authKey(), 'x'), advertised: { routes: ['10.9.0.0/16'], exitNode: false } }),
    );
    assert.equal(ok.status, 200);
    assert.deepEqual(parseRegisterResult(ok.body).node.advertised, { routes: ['10.9.0.0/16'], exitNode: false });
    await admin.deleteNode(h.dir, 'x');
    assert.equal((await advertise(h, n, ['192.168.1.0/24', 'FD00:1::/64', '192.168.1.0/24'], true)).status, 200);
    await until(() => latest(s)?.self.advertised?.routes.length === 2, 5000, 'own advertisement in the self view');
    assert.deepEqual(latest(s)!.self.advertised, { routes: ['192.168.1.0/24', 'fd00:1::/64'], exitNode: true });
    s.req.destroy();
  } finally {
    await h.close();
  }
});

test('approve, reject, withdraw: only advertised ∩ approved routes reach maps, only the primary in allowedIps; exit nodes never add 0/0', async () => {
  const h = await harness();
  const streams: OpenStream[] = [];
  try {
    const router = await join(h, 'router', { routes: ['192.168.1.0/24'], exitNode: true });
    const client = await join(h, 'client');
    const c = await openStream(h, client);
    streams.push(c, await openStream(h, router));
    await until(() => peer(c, 'router')?.online === true, 5000, 'router online in the client map');
    assert.deepEqual(peer(c, 'router')!.routes, [], 'advertised but not approved: nothing');
    assert.equal(peer(c, 'router')!.exitNode, false);

    // pre-approval of a route the router does not advertise yet
    const pre = await admin.approveRoute(h.dir, 'router', '10.20.0.0/16');
    assert.equal(pre.advertised, false);
    await admin.approveRoute(h.dir, 'router', '192.168.1.0/24');
    await until(() => peer(c, 'router')?.routes?.length === 1, 2000, 'approved route in the map');
    const r = peer(c, 'router')!;
    assert.deepEqual([r.routes, r.primaryRoutes], [['192.168.1.0/24'], ['192.168.1.0/24']]);
    assert.ok(r.allowedIps.includes('192.168.1.0/24'));
    assert.ok(!r.allowedIps.includes('10.20.0.0/16'), 'a pre-approval is not active');

    // exit: ::/0 approves both; the map says exitNode, allowedIps never carry the default route
    const ex = await admin.approveRoute(h.dir, 'router', '::/0');
    assert.deepEqual(ex.prefixes, ['0.0.0.0/0', '::/0']);
    await until(() => peer(c, 'router')?.exitNode === true, 2000, 'exit node in the map');
    assert.ok(!peer(c, 'router')!.allowedIps.some((a) => a.endsWith('/0')));
    const rows = await admin.listRoutes(h.dir);
    assert.deepEqual(
      rows.map((x) => [x.node, x.kind, x.prefix, x.advertised, x.approved, x.primary]),
      [
        ['router', 'route', '192.168.1.0/24', true, true, true],
        ['router', 'route', '10.20.0.0/16', false, true, false],
        ['router', 'exit', '0.0.0.0/0,::/0', true, true, false],
      ],
    );

    // the router starts advertising the pre-approved one: active at once
    assert.equal((await advertise(h, router, ['192.168.1.0/24', '10.20.0.0/16'], true)).status, 200);
    await until(() => peer(c, 'router')?.routes?.length === 2, 2000, 'pre-approved route active');
    // withdrawn: leaves the map (the approval stays)
    assert.equal((await advertise(h, router, ['10.20.0.0/16'], false)).status, 200);
    await until(() => peer(c, 'router')?.routes?.length === 1 && peer(c, 'router')?.exitNode === false, 2000, 'withdrawn route and exit gone');
    assert.ok(!peer(c, 'router')!.allowedIps.includes('192.168.1.0/24'));
    // rejected: leaves the map
    await admin.rejectRoute(h.dir, 'router', '10.20.0.0/16');
    await until(() => peer(c, 'router')?.routes?.length === 0, 2000, 'rejected route gone');
    assert.ok(!peer(c, 'router')!.allowedIps.includes('10.20.0.0/16'));
    await assert.rejects(admin.rejectRoute(h.dir, 'router', '10.20.0.0/16'), (e: unknown) => e instanceof ControlError && e.code === 'NOT_FOUND');
    await assert.rejects(admin.approveRoute(h.dir, 'router', '10.20.0.1/16'), (e: unknown) => e instanceof ControlError && /host bits/.test(e.message));
    await assert.rejects(admin.approveRoute(h.dir, 'nobody', '10.20.0.0/16'), (e: unknown) => e instanceof ControlError && e.code === 'NODE_UNKNOWN');
  } finally {
    for (const s of streams) s.req.destroy();
    await h.close();
  }
});

test('two routers for one prefix: the lower id is primary; its stream closes -> the other takes over; it returns -> no move back', async () => {
  const h = await harness();
  const streams: OpenStream[] = [];
  try {
    const r1 = await join(h, 'r1', { routes: ['192.168.7.0/24'], exitNode: false });
    const r2 = await join(h, 'r2', { routes: ['192.168.7.0/24'], exitNode: false });
    const client = await join(h, 'client');
    await admin.approveRoute(h.dir, 'r1', '192.168.7.0/24');
    await admin.approveRoute(h.dir, 'r2', '192.168.7.0/24');
    const c = await openStream(h, client);
    let s1 = await openStream(h, r1);
    const s2 = await openStream(h, r2);
    streams.push(c, s2);
    const primary = (): string | undefined => latest(c)?.peers.find((p) => p.primaryRoutes?.includes('192.168.7.0/24'))?.name;
    await until(() => primary() === 'r1' && peer(c, 'r2')?.online === true, 5000, 'r1 primary');
    // only the primary carries the prefix
    assert.ok(!peer(c, 'r2')!.allowedIps.includes('192.168.7.0/24'));
    assert.deepEqual(peer(c, 'r2')!.routes, ['192.168.7.0/24']);

    s1.req.destroy();
    await until(() => primary() === 'r2', 5000, 'r2 takes over when r1 goes offline');
    assert.equal(peer(c, 'r1')!.online, false);
    assert.ok(!peer(c, 'r1')!.allowedIps.includes('192.168.7.0/24'));

    s1 = await openStream(h, r1);
    streams.push(s1);
    await until(() => peer(c, 'r1')?.online === true, 5000, 'r1 back online');
    assert.equal(primary(), 'r2', 'no move back');
    const rows = await admin.listRoutes(h.dir);
    assert.deepEqual(
      rows.map((x) => [x.node, x.primary]),
      [
        ['r1', false],
        ['r2', true],
      ],
    );
  } finally {
    for (const s of streams) s.req.destroy();
    await h.close();
  }
});

test("approve refuses a prefix that would capture the control server's or a relay's address; host names are resolved and said so", async () => {
  const dir = tempDir();
  const store = new SqliteStore(stateFiles(dir).db);
  try {
    const r = await Registry.open(store, { keyExpiryMs: null });
    const { key } = await createAuthKey(store, { reusable: true, ephemeral: false, expiryMs: null });
    await r.register('nk', { authKey: key, hostname: 'gw', os: 'linux', version: 't', discoKey: 'dk', endpoints: [] });
    const guard = await protectedAddresses({ listenHost: '10.9.8.7', relayUrls: ['https://[2001:db8::7]:443', 'https://localhost:8443'] });
    assert.ok(
      guard.notes.some((n) => /resolved localhost .* for this check/.test(n)),
      guard.notes.join('; '),
    );
    const refusedFor = async (prefix: string): Promise<string> => {
      try {
        await approveRoute(r, 'gw', prefix, guard);
      } catch (err) {
        assert.ok(err instanceof ControlError);
        return err.message;
      }
      return 'approved';
    };
    assert.match(await refusedFor('10.9.0.0/16'), /^10\.9\.0\.0\/16 contains 10\.9\.8\.7, the control server: .*approve a narrower prefix$/);
    assert.match(await refusedFor('2001:db8::/32'), /contains 2001:db8::7, relay https:\/\/\[2001:db8::7\]:443/);
    assert.equal(await refusedFor('10.9.9.0/24'), 'approved');
    // the exit node is routed around control and relays by the node's own policy routing, so it is not refused
    assert.equal(await refusedFor('0.0.0.0/0'), 'approved');
    assert.deepEqual(
      (await store.listRouteApprovals()).map((a) => a.prefix),
      ['0.0.0.0/0', '10.9.9.0/24', '::/0'],
    );
    await rejectRoute(r, 'gw', '0.0.0.0/0');
    assert.deepEqual(
      (await store.listRouteApprovals()).map((a) => a.prefix),
      ['10.9.9.0/24'],
    );
    // approvals per node are bounded (pre-approvals count)
    for (let i = 0; (await store.listRouteApprovals()).length < MAX_APPROVALS_PER_NODE; i++) await approveRoute(r, 'gw', `172.16.${i}.0/24`, guard);
    assert.match(await refusedFor('10.200.0.0/16'), new RegExp(`already has ${MAX_APPROVALS_PER_NODE} approvals \\(MAX_APPROVALS_PER_NODE`));
    // the server records where it listens, so approvals made while it is stopped check it too
    const none = await protectedAddresses(null);
    assert.match(none.notes[0]!, /never ran here/);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
