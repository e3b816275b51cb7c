// The admin web API on control's HTTPS listener: who may call it (admin token
// as Bearer, or a session cookie plus its CSRF token for writes), what it
// answers, its headers, its live events, and its bounds.
import { parseJoin } from '../../src/netmap/join-string.js';
import { certPin } from '../../src/crypto/spki-pin.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { harness, until, type Harness } from './helpers.js';
import { bearer, joinNode, web } from './admin-web-client.js';
import { adminTokens } from '../../src/control/web/token-client.js';
import { SessionTable } from '../../src/control/web/sessions.js';

async function withServer(fn: (h: Harness, token: string) => Promise<void>, opts: Parameters<typeof harness>[0] = {}): Promise<void> {
  const h = await harness(opts);
  try {
    const t = await adminTokens.create(h.dir, 'test');
    await fn(h, t.token);
  } finally {
    await h.close();
  }
}

async function login(h: Harness, token: string): Promise<{ cookie: string; csrf: string }> {
  const r = await web(h, 'POST', '/admin/api/login', { body: { token } });
  assert.equal(r.status, 200, r.text);
  const set = String(r.headers['set-cookie']);
  assert.match(set, /^msadm_session=[A-Za-z0-9_-]{43}; Path=\/admin; Max-Age=\d+; HttpOnly; Secure; SameSite=Strict$/);
  return { cookie: set.split(';')[0]!, csrf: r.body.csrf as string };
}

test('without credentials every API call is 401; a wrong Bearer token too', async () => {
  await withServer(async (h) => {
    for (const [m, p] of [
      ['GET', '/admin/api/nodes'],
      ['GET', '/admin/api/events'],
      ['POST', '/admin/api/nodes/delete'],
      ['POST', '/admin/api/authkeys'],
      ['GET', '/admin/api/session'],
    ] as const) {
      const r = await web(h, m, p, m === 'POST' ? { body: {} } : {});
      assert.equal(r.status, 401, `${m} ${p}`);
      assert.equal(r.body.error?.code, 'UNAUTHORIZED');
      assert.match(String(r.headers['www-authenticate']), /^Bearer/);
    }
    const wrong = await web(h, 'GET', '/admin/api/nodes', { headers: bearer(`msadm-000000000000-${'A'.repeat(43)}`) });
    assert.equal(wrong.status, 401);
    const cookie = await web(h, 'GET', '/admin/api/nodes', { headers: { cookie: 'msadm_session=forged' } });
    assert.equal(cookie.status, 401);
  });
});

test('a Bearer token lists nodes with owner, addresses, online state, home relay and key expiry; the token is stored only hashed', async () => {
  await withServer(async (h, token) => {
    const a = await joinNode(h, await h.authKey(), 'alpha');
    try {
      await until(async () => ((await web(h, 'GET', '/admin/api/nodes', { headers: bearer(token) })).body as unknown as unknown[]).length === 1, 5000, 'node');
      const r = await web(h, 'GET', '/admin/api/nodes', { headers: bearer(token) });
      assert.equal(r.status, 200);
      const [n] = r.body as unknown as Record<string, unknown>[];
      assert.equal(n!.name, 'alpha');
      assert.equal(n!.online, true);
      assert.equal(n!.homeRelay, null);
      assert.equal(n!.paths, null);
      assert.equal(n!.keyExpiry, null);
      assert.equal((n!.addresses as string[]).length, 2);
      assert.equal(r.headers['cache-control'], 'no-store');
      // the database holds the hash, never the secret
      const { SqliteStore } = await import('../../src/control/sqlite-store.js');
      const { stateFiles } = await import('../../src/control/state-dir.js');
      await h.server.stop();
      const s = new SqliteStore(stateFiles(h.dir).db, { mustExist: true });
      const stored = (await s.getMeta('admin_web_tokens')) ?? '';
      s.close();
      assert.ok(stored.includes(token.slice(6, 18)), 'the id is stored');
      assert.ok(!stored.includes(token.slice(19)), 'the secret is not');
    } finally {
      a.stream.req.destroy();
    }
  });
});

test("a node's path counts, sent with its endpoints, show in the node list while it is online; hostile counts are refused and nothing stored", async () => {
  await withServer(async (h, token) => {
    const a = await joinNode(h, await h.authKey(), 'alpha');
    const pathsOf = async (): Promise<unknown> => {
      const r = await web(h, 'GET', '/admin/api/nodes', { headers: bearer(token) });
      const list = r.body as unknown as { name: string; paths: unknown; online: boolean }[];
      return list.find((n) => n.name === 'alpha')?.paths;
    };
    const endpoints = (body: object) => web(h, 'POST', '/meshctl/v1/endpoints', { body: a.node.seal('endpoints', { endpoints: ['192.0.2.1:9'], ...body }) });
    try {
      await until(async () => (await pathsOf()) === null, 5000, 'node listed without paths');
      for (const paths of [
        { direct: -1, relay: 0 },
        { direct: 1, relay: 2_000_000 },
        { direct: 1.5, relay: 0 },
        { direct: '3', relay: 1 },
        { direct: 3 },
        { direct: 600_000, relay: 600_000 },
        [3, 1],
        'many',
        null,
      ]) {
        const r = await endpoints({ paths });
        assert.equal(r.status, 400, `${JSON.stringify(paths)}: ${r.text}`);
        assert.match(String(r.body.message ?? r.text), /endpoints\.paths/);
        assert.equal(await pathsOf(), null, `${JSON.stringify(paths)}: nothing stored`);
      }
      assert.equal((await endpoints({ paths: { direct: 3, relay: 1 } })).status, 200);
      assert.deepEqual(await pathsOf(), { direct: 3, relay: 1 });
      assert.equal((await endpoints({ paths: { direct: -5, relay: 1 } })).status, 400);
      assert.deepEqual(await pathsOf(), { direct: 3, relay: 1 }, 'a refused report leaves the last good one');
      assert.equal((await endpoints({})).status, 200, 'an update without paths (an older node) is accepted');
      assert.deepEqual(await pathsOf(), { direct: 3, relay: 1 }, 'and keeps the last report');
      a.stream.req.destroy(); // offline: the live report is gone
      await until(async () => (await pathsOf()) === null, 5000, 'paths dropped when the node went offline');
    } finally {
      a.stream.req.destroy();
    }
  });
});

test('a session cookie reads, but writes only with the CSRF header (403 without it, also with a wrong one)', async () => {
  await withServer(async (h, token) => {
    const s = await login(h, token);
    const cookie = { cookie: s.cookie };
    assert.equal((await web(h, 'GET', '/admin/api/authkeys', { headers: cookie })).status, 200);
    const no = await web(h, 'POST', '/admin/api/authkeys', { headers: cookie, body: {} });
    assert.equal(no.status, 403);
    assert.equal(no.body.error?.code, 'FORBIDDEN');
    const wrong = await web(h, 'POST', '/admin/api/authkeys', { headers: { ...cookie, 'x-csrf-token': 'x'.repeat(43) }, body: {} });
    assert.equal(wrong.status, 403);
    assert.equal(((await web(h, 'GET', '/admin/api/authkeys', { headers: cookie })).body as unknown as unknown[]).length, 0, 'nothing was created');
    const ok = await web(h, 'POST', '/admin/api/authkeys', { headers: { ...cookie, 'x-csrf-token': s.csrf }, body: { reusable: true } });
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.body.key as string, /^mskey-/);
    assert.match(ok.body.qrSvg as string, /^<svg /);
    assert.equal(ok.body.join, null, 'no control URL given: no join string');
    // with the URL nodes use: a join string pinned to this server's key, holding the new key
    const withJoin = await web(h, 'POST', '/admin/api/authkeys', {
      headers: { ...cookie, 'x-csrf-token': s.csrf },
      body: { controlUrls: ['https://ctl.example.net:8443/'] },
    });
    assert.equal(withJoin.status, 200, withJoin.text);
    const parsed = parseJoin(withJoin.body.join as string);
    assert.deepEqual(parsed, { urls: ['https://ctl.example.net:8443'], pin: certPin(h.server.certPem), authKey: withJoin.body.key });
    const badUrl = await web(h, 'POST', '/admin/api/authkeys', { headers: { ...cookie, 'x-csrf-token': s.csrf }, body: { controlUrls: ['http://x'] } });
    assert.equal(badUrl.status, 400);
    assert.match(badUrl.body.error!.message, /controlUrls: "http:\/\/x" is not an https:\/\/ URL/);
    await web(h, 'POST', '/admin/api/authkeys/revoke', { headers: { ...cookie, 'x-csrf-token': s.csrf }, body: { id: withJoin.body.id } });
    // the same validation as the unix-socket admin
    const bad = await web(h, 'POST', '/admin/api/authkeys', { headers: { ...cookie, 'x-csrf-token': s.csrf }, body: { reusable: 'yes' } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error!.message, /reusable must be true or false/);
    const revoke = await web(h, 'POST', '/admin/api/authkeys/revoke', { headers: { ...cookie, 'x-csrf-token': s.csrf }, body: { id: ok.body.id } });
    assert.equal(revoke.status, 200);
    // logging out ends the session
    assert.equal((await web(h, 'POST', '/admin/api/logout', { headers: { ...cookie, 'x-csrf-token': s.csrf } })).status, 200);
    assert.equal((await web(h, 'GET', '/admin/api/authkeys', { headers: cookie })).status, 401);
  });
});

test('revoking an admin token ends its sessions and its Bearer use at once', async () => {
  await withServer(async (h, token) => {
    const s = await login(h, token);
    const list = await adminTokens.list(h.dir);
    assert.equal(list.length, 1);
    await adminTokens.revoke(h.dir, list[0]!.id);
    assert.equal((await web(h, 'GET', '/admin/api/nodes', { headers: { cookie: s.cookie } })).status, 401);
    assert.equal((await web(h, 'GET', '/admin/api/nodes', { headers: bearer(token) })).status, 401);
  });
});

test('the page and the API carry a strict CSP, nosniff, no-referrer and no framing', async () => {
  await withServer(async (h) => {
    for (const p of ['/admin/', '/admin/assets/admin.js', '/admin/api/nodes']) {
      const r = await web(h, 'GET', p);
      const csp = String(r.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/, p);
      assert.match(csp, /frame-ancestors 'none'/, p);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, p);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
      assert.equal(r.headers['referrer-policy'], 'no-referrer', p);
    }
    const page = await web(h, 'GET', '/admin/');
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.text, /<script>|style=/, 'no inline script or style');
    assert.equal((await web(h, 'GET', '/admin')).status, 308);
    assert.equal((await web(h, 'GET', '/admin/assets/%2e%2e%2fapi.js')).status, 404);
  });
});

test('policy check gives errors with line and column; a refused set keeps the policy in force', async () => {
  await withServer(async (h, token) => {
    const auth = bearer(token);
    const text = '{\n  "acls": [\n    { "action": "accept", "src": ["group:nope"], "dst": ["*:*"] }\n  ]\n}\n';
    const c = await web(h, 'POST', '/admin/api/policy/check', { headers: auth, body: { text } });
    assert.equal(c.status, 200);
    assert.equal(c.body.ok, false);
    const [e] = c.body.errors as { line: number; col: number; message: string }[];
    assert.equal(e!.line, 3);
    assert.ok(e!.col > 1);
    const set = await web(h, 'POST', '/admin/api/policy', { headers: auth, body: { text } });
    assert.equal(set.status, 400);
    assert.equal((set.body.error as unknown as { problems: { line: number }[] }).problems[0]!.line, 3);
    assert.equal((await web(h, 'GET', '/admin/api/policy', { headers: auth })).body.text, null);
    const good = '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}';
    assert.deepEqual((await web(h, 'POST', '/admin/api/policy/check', { headers: auth, body: { text: good } })).body, { ok: true, acls: 1, tests: 0 });
    assert.equal((await web(h, 'POST', '/admin/api/policy', { headers: auth, body: { text: good } })).status, 200);
    assert.equal((await web(h, 'GET', '/admin/api/policy', { headers: auth })).body.text, good);
  });
});

test('rename refuses a bad or taken name and renames otherwise; delete removes the node and ends its stream', async () => {
  await withServer(async (h, token) => {
    const auth = bearer(token);
    const key = await h.authKey();
    const a = await joinNode(h, key, 'alpha');
    const b = await joinNode(h, key, 'beta');
    try {
      const nodes = (await web(h, 'GET', '/admin/api/nodes', { headers: auth })).body as unknown as { id: number; name: string }[];
      const alpha = nodes.find((n) => n.name === 'alpha')!;
      const bad = await web(h, 'POST', '/admin/api/nodes/rename', { headers: auth, body: { node: String(alpha.id), name: 'Not A Label' } });
      assert.equal(bad.status, 400);
      const taken = await web(h, 'POST', '/admin/api/nodes/rename', { headers: auth, body: { node: String(alpha.id), name: 'beta' } });
      assert.equal(taken.status, 409);
      const ok = await web(h, 'POST', '/admin/api/nodes/rename', { headers: auth, body: { node: String(alpha.id), name: 'gamma' } });
      assert.equal(ok.status, 200, ok.text);
      const del = await web(h, 'POST', '/admin/api/nodes/delete', { headers: auth, body: { node: 'beta' } });
      assert.equal(del.status, 200);
      await b.stream.ended;
      const after = ((await web(h, 'GET', '/admin/api/nodes', { headers: auth })).body as unknown as { name: string }[]).map((n) => n.name);
      assert.deepEqual(after, ['gamma']);
    } finally {
      a.stream.req.destroy();
      b.stream.req.destroy();
    }
  });
});

test('the event stream sends `changed` when a node goes offline, and its count is bounded', async () => {
  await withServer(
    async (h, token) => {
      const a = await joinNode(h, await h.authKey(), 'alpha');
      const events: string[] = [];
      const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
        const req = request(`${h.url}/admin/api/events`, { ca: h.server.certPem, agent: false, headers: bearer(token) }, resolve);
        req.on('error', reject);
        req.end();
      });
      try {
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /^text\/event-stream/);
        res.on('data', (c: Buffer) =>
          events.push(
            ...c
              .toString()
              .split('\n')
              .filter((l) => l.startsWith('event: ')),
          ),
        );
        await until(() => events.length >= 1, 5000, 'first event');
        const second = await web(h, 'GET', '/admin/api/events', { headers: bearer(token) });
        assert.equal(second.status, 429, 'over the limit of one stream');
        const before = events.length;
        a.stream.req.destroy();
        await until(() => events.length > before, 5000, 'a changed event after the node left');
        const n = (await web(h, 'GET', '/admin/api/nodes', { headers: bearer(token) })).body as unknown as { online: boolean }[];
        assert.equal(n[0]!.online, false);
      } finally {
        res.destroy();
        a.stream.req.destroy();
      }
    },
    { adminWeb: { maxEventStreams: 1, eventDebounceMs: 10 } },
  );
});

test('logins are rate limited per source before the token is checked', async () => {
  await withServer(
    async (h, token) => {
      for (let i = 0; i < 3; i++) assert.equal((await web(h, 'POST', '/admin/api/login', { body: { token: 'wrong' } })).status, 401);
      const r = await web(h, 'POST', '/admin/api/login', { body: { token } });
      assert.equal(r.status, 429);
      assert.ok(Number(r.headers['retry-after']) >= 1);
    },
    { adminWeb: { loginBurstPerSource: 3, loginsPerSecPerSource: 0.01 } },
  );
});

test('the session table holds at most its bound, and sessions end after their lifetime', () => {
  let now = 0;
  const t = new SessionTable({ maxSessions: 3, lifetimeMs: 1000 }, () => now);
  const first = t.create('a');
  for (let i = 0; i < 5; i++) t.create('a');
  assert.equal(t.size, 3);
  assert.equal(t.get(first.id), null, 'the oldest went first');
  const s = t.create('b');
  now = 1000;
  assert.equal(t.get(s.id), null, 'expired');
});

test('--admin-listen serves the admin web alone on its own address', async () => {
  await withServer(
    async (h, token) => {
      const port = h.server.adminWebPort;
      assert.ok(port > 0);
      assert.equal((await web(h, 'GET', '/admin/api/nodes', { port, headers: bearer(token) })).status, 200);
      assert.equal((await web(h, 'GET', '/admin/api/nodes', { port })).status, 401);
      assert.equal((await web(h, 'GET', '/meshctl/v1/key', { port })).status, 404);
    },
    { adminListen: { address: '127.0.0.1', port: 0 } },
  );
});
