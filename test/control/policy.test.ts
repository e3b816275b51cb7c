// The access policy at a running control server: `policy set` reaches a
// connected node's map stream within a second (its packet filter and the
// peers it may see), a refused policy leaves the one in force, and with no
// policy maps stay as they were (no packetFilter, every peer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oneLine, runCli } from '../helpers/cli-run.js';
import { parseIp } from '../../src/util/netaddr.js';
import { admin } from '../../src/control/admin-client.js';
import { ControlError } from '../../src/control/protocol.js';
import { harness, latestMap, Node, openStream, registerBody, until, type OpenStream } from './helpers.js';

const P = '/meshctl/v1';

test('policy set: a connected node gets its new packet filter and peers within 1 s; a refused policy keeps the old one', async () => {
  const h = await harness();
  let s: OpenStream | undefined;
  try {
    const key = await h.authKey();
    const a = new Node(h.server.publicKey!);
    const b = new Node(h.server.publicKey!);
    const c = new Node(h.server.publicKey!);
    const reg = async (n: Node, name: string): Promise<{ addresses: string[] }> => {
      const r = await h.post(`${P}/register`, n.seal('register', registerBody(key, name)));
      assert.equal(r.status, 200);
      return r.body.node as { addresses: string[] };
    };
    const na = await reg(a, 'a');
    const nb = await reg(b, 'b');
    await reg(c, 'c');
    s = await openStream(h, a);
    await until(() => latestMap(s!) !== undefined, 5000, 'first map');
    // no policy: allow all, no packet filter
    assert.equal(latestMap(s)!.packetFilter, undefined);
    assert.deepEqual(
      latestMap(s)!
        .peers.map((p) => p.name)
        .sort(),
      ['b', 'c'],
    );
    assert.equal((await admin.getPolicy(h.dir)).text, null);

    // a may reach b on 22; b may reach a on 443; c is in neither
    const policy = `{
      // by address: the nodes here have no owner or tags
      "acls": [
        { "action": "accept", "src": ["${na.addresses[0]}"], "dst": ["${nb.addresses[0]}:22"] },
        { "action": "accept", "src": ["${nb.addresses[0]}"], "dst": ["${na.addresses[0]}:443"] },
      ],
    }`;
    const t0 = Date.now();
    assert.deepEqual(await admin.setPolicy(h.dir, policy), { acls: 2, tests: 0 });
    await until(() => latestMap(s!)?.packetFilter !== undefined, 1000, 'the new packet filter in the map');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
    const m = latestMap(s)!;
    assert.deepEqual(m.packetFilter, [
      { srcIps: [`${nb.addresses[0]}/32`], dstPorts: [{ ip: `${na.addresses[0]}/32`, first: 443, last: 443 }], protocols: [] },
    ]);
    assert.deepEqual(
      m.peers.map((p) => p.name),
      ['b'],
    );

    // refused: the error names the field and line:col; the policy in force and the map stay
    const lines = s.lines().length;
    await assert.rejects(
      admin.setPolicy(h.dir, '{\n  "acls": [{ "action": "accept", "src": ["group:nobody"], "dst": ["*:*"] }]\n}'),
      (e: unknown) => e instanceof ControlError && e.code === 'BAD_REQUEST' && e.message === 'acls[0].src[0]: unknown group "group:nobody" (line 2:42)',
    );
    await assert.rejects(
      admin.setPolicy(h.dir, '{"tests": [{"src": "alice", "accept": ["bob:22"]}]}'),
      (e: unknown) => e instanceof ControlError && /tests\[0\]: alice -> bob:22 is denied, the test says accept/.test(e.message),
    );
    assert.equal((await admin.getPolicy(h.dir)).text, policy);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(
      s
        .lines()
        .slice(lines)
        .filter((l) => l.includes('"map"')).length,
      0,
      'no new map for a refused policy',
    );

    // an empty policy: nothing reaches anything, no peers
    await admin.setPolicy(h.dir, '{}');
    await until(() => latestMap(s!)?.peers.length === 0, 1000, 'no peers under an empty policy');
    assert.deepEqual(latestMap(s)!.packetFilter, []);
  } finally {
    s?.req.destroy();
    await h.close();
  }
});

test('policy get shows the text set and when it was set', async () => {
  const h = await harness();
  const dir = h.dir;
  try {
    await admin.setPolicy(dir, '{"acls": []}');
    assert.equal((await admin.getPolicy(dir)).text, '{"acls": []}');
    assert.ok((await admin.getPolicy(dir)).setAt);
  } finally {
    await h.close();
  }
});

test('owners and tags: a user reaches a tagged NAS on 22 only, the NAS sees only its clients, autoApprovers approve a tagged router', async () => {
  const h = await harness();
  const streams: OpenStream[] = [];
  try {
    await admin.createUser(h.dir, 'alice');
    const keyFor = async (o: { user?: string; tags?: string[] }): Promise<string> =>
      (await admin.createAuthKey(h.dir, { reusable: true, ephemeral: false, expiryMs: null, ...o })).key;
    const policy = `{
      "tagOwners": { "tag:nas": ["alice"], "tag:router": [] },
      "acls": [{ "action": "accept", "src": ["alice"], "dst": ["tag:nas:22"] }],
      "autoApprovers": { "routes": { "10.9.0.0/16": ["tag:router"] } },
      "tests": [{ "src": "alice", "accept": ["tag:nas:22"], "deny": ["tag:nas:5432"] }],
    }`;
    await admin.setPolicy(h.dir, policy);
    const reg = async (key: string, name: string, extra: Record<string, unknown> = {}): Promise<{ n: Node; addresses: string[] }> => {
      const n = new Node(h.server.publicKey!);
      const r = await h.post(`${P}/register`, n.seal('register', { ...registerBody(key, name), ...extra }));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      // canonical, as the node's map parser gives them
      return { n, addresses: (r.body.node as { addresses: string[] }).addresses.map((a) => parseIp(a).text) };
    };
    const laptop = await reg(await keyFor({ user: 'alice' }), 'laptop');
    const nas = await reg(await keyFor({ tags: ['tag:nas'] }), 'nas');
    await reg(await keyFor({ tags: ['tag:router'] }), 'router', { advertised: { routes: ['10.9.1.0/24'], exitNode: false } });
    const nasStream = await openStream(h, nas.n);
    const laptopStream = await openStream(h, laptop.n);
    streams.push(nasStream, laptopStream);
    await until(() => latestMap(nasStream)?.packetFilter !== undefined && latestMap(laptopStream) !== undefined, 5000, 'first maps');
    const nasMap = latestMap(nasStream)!;
    assert.deepEqual(nasMap.self.tags, ['tag:nas']);
    assert.deepEqual(nasMap.packetFilter, [
      {
        srcIps: laptop.addresses.map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`)).sort(),
        dstPorts: nas.addresses.map((a) => ({ ip: a.includes(':') ? `${a}/128` : `${a}/32`, first: 22, last: 22 })),
        protocols: [],
      },
    ]);
    assert.deepEqual(
      nasMap.peers.map((p) => p.name),
      ['laptop'],
    );
    assert.deepEqual(
      latestMap(laptopStream)!.peers.map((p) => p.name),
      ['nas'],
    );
    assert.deepEqual(latestMap(laptopStream)!.packetFilter, []);
    // the router's route is approved by the policy, without an admin
    await until(
      async () => (await admin.listRoutes(h.dir)).some((r) => r.node === 'router' && r.prefix === '10.9.1.0/24' && r.approved),
      2000,
      'auto-approval',
    );
  } finally {
    for (const s of streams) s.req.destroy();
    await h.close();
  }
});

test('control policy check works offline; set and get through the CLI; errors are one line with line:col, exit non-zero', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-policy-'));
  try {
    const good = join(dir, 'good.jsonc');
    const bad = join(dir, 'bad.jsonc');
    writeFileSync(
      good,
      '{\n  // everyone may ssh to servers\n  "tagOwners": {"tag:server": []},\n  "acls": [{"action": "accept", "src": ["*"], "dst": ["tag:server:22"]}],\n}\n',
    );
    writeFileSync(bad, '{\n  "acls": [{"action": "accept", "src": ["*"], "dst": ["tag:server:22"]}]\n}\n');
    const ok = await runCli('control', 'policy', 'check', good);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.err, /ok, 1 acl entries, 0 tests passed/);
    const no = await runCli('control', 'policy', 'check', bad);
    assert.notEqual(no.code, 0);
    oneLine(no.err);
    assert.match(no.err, /acls\[0\]\.dst\[0\]: unknown tag "tag:server": declare it in tagOwners \(line 2:55\)/);
    // set and get on a state dir with no server running: straight to the database
    const state = join(dir, 'state');
    await admin.createUser(state, 'alice');
    assert.equal((await runCli('control', 'policy', 'set', good, '--state-dir', state)).code, 0);
    const got = await runCli('control', 'policy', 'get', '--state-dir', state);
    assert.equal(got.out, readFileSync(good, 'utf8'));
    const refused = await runCli('control', 'policy', 'set', bad, '--state-dir', state);
    assert.notEqual(refused.code, 0);
    assert.equal((await runCli('control', 'policy', 'get', '--state-dir', state)).out, readFileSync(good, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
