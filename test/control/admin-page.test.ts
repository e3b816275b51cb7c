// The admin page in a real browser (Debian's chromium driven by
// playwright-core) against a running control server with real TLS: log in,
// watch a node go offline live, create and revoke a key, delete a node, check
// a policy, and see writes without the CSRF token and calls without
// credentials refused. Each page is screenshotted at desktop and phone width
// into test/artifacts/ and checked with axe-core. Without chromium the test is
// skipped (loudly), except under CI, where it fails.
import { parseJoin } from '../../src/netmap/join-string.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { packageRoot } from '../../src/cli/version.js';
import { adminTokens } from '../../src/control/web/token-client.js';
import { harness, type Harness } from './helpers.js';
import { bearer, joinNode, web } from './admin-web-client.js';

const CHROMIUM = '/usr/bin/chromium';
const root = packageRoot();
const ARTIFACTS = join(root, 'test', 'artifacts');
const PAGES = ['nodes', 'keys', 'routes', 'policy', 'relays'] as const;
/** What shows once each page has loaded its data (the event stream keeps the network busy, so "network idle" never comes). */
const LOADED: Record<(typeof PAGES)[number], string> = {
  nodes: 'tr[data-node]',
  keys: 'tr[data-key]',
  routes: 'tbody tr',
  policy: 'text=No policy is set',
  relays: 'tbody tr',
};
const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 360, height: 740 } } as const;
/** How long the page may take to show a change: the debounce, a fetch and a render, with room for a loaded 2-core machine. */
const UI_WAIT_MS = 10_000;

const missing = !existsSync(CHROMIUM);
if (missing && process.env.CI) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (deps/debian.json lists it)`);
if (missing) process.stderr.write(`\n*** admin page browser test SKIPPED: ${CHROMIUM} not found (apt-get install chromium) ***\n\n`);

/** Runs axe-core in the page (evaluated over the DevTools protocol, so the page's CSP stays in force) and returns serious or critical violations. */
async function axeViolations(page: Page): Promise<string[]> {
  const src = readFileSync(join(root, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
  await page.evaluate(src);
  const result = (await page.evaluate('axe.run(document, { resultTypes: ["violations"] })')) as {
    violations: { id: string; impact: string | null; help: string; nodes: { target: unknown }[] }[];
  };
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${JSON.stringify(v.nodes.map((n) => n.target))}`);
}

async function shootAll(page: Page, h: Harness, label: string): Promise<void> {
  for (const [vp, size] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(size);
    for (const p of PAGES) {
      await page.goto(`${h.url}/admin/#/${p}`);
      await page.locator(LOADED[p]).first().waitFor({ timeout: UI_WAIT_MS });
      await page.screenshot({ path: join(ARTIFACTS, `admin-${p}-${vp}${label}.png`), fullPage: true });
      assert.deepEqual(await axeViolations(page), [], `axe on ${p} at ${vp} width`);
    }
  }
}

test('the admin page in chromium: login, live node state, keys, delete, policy, CSRF and 401', {
  skip: missing ? `${CHROMIUM} not found` : false,
}, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const h = await harness({ relays: [{ code: 'fra', url: 'https://127.0.0.1:9', stunPort: 3478 }], adminWeb: { eventDebounceMs: 50 } });
  let browser: Browser | null = null;
  const key = await h.authKey();
  const alpha = await joinNode(h, key, 'alpha');
  const beta = await joinNode(h, key, 'beta');
  try {
    const { token } = await adminTokens.create(h.dir, 'browser');
    // both are subnet routers, so the routes page has rows
    for (const [n, prefix] of [
      [alpha, '10.10.0.0/24'],
      [beta, '10.20.0.0/24'],
    ] as const) {
      const r = await web(h, 'POST', '/meshctl/v1/advertise', { body: n.node.seal('advertise', { routes: [prefix], exitNode: false }) });
      assert.equal(r.status, 200);
    }
    // beta reports its paths with its endpoints; alpha does not
    const paths = { endpoints: [], paths: { direct: 3, relay: 1 } };
    assert.equal((await web(h, 'POST', '/meshctl/v1/endpoints', { body: beta.node.seal('endpoints', paths) })).status, 200);

    // chromium's sandbox refuses to start as root
    browser = await chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: VIEWPORTS.desktop });
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });

    await page.goto(`${h.url}/admin/`);
    await page.getByLabel('Admin token').fill(token);
    await page.getByRole('button', { name: 'Log in' }).click();
    const row = (name: string) => page.locator(`tr[data-node="${name}"]`);
    await row('alpha').getByText('online', { exact: true }).waitFor({ timeout: UI_WAIT_MS });
    await row('beta').getByText('online', { exact: true }).waitFor({ timeout: UI_WAIT_MS });
    await page.getByText('Live', { exact: true }).waitFor({ timeout: UI_WAIT_MS });
    await row('beta').getByText('3 direct · 1 relay', { exact: true }).waitFor({ timeout: UI_WAIT_MS });
    await row('alpha').getByText('not reported', { exact: true }).waitFor({ timeout: UI_WAIT_MS });

    // alpha's map stream goes away: the page shows it offline without a reload
    alpha.stream.req.destroy();
    await row('alpha').getByText('offline', { exact: true }).waitFor({ timeout: UI_WAIT_MS });

    // create a key: shown once with its QR code; then revoke it
    await page.getByRole('link', { name: 'Auth keys' }).click();
    await page.getByLabel('Reusable (registers any number of nodes)').check();
    await page.getByRole('button', { name: 'Create key' }).click();
    const keyText = await page.getByLabel('Auth key', { exact: true }).inputValue();
    assert.match(keyText, /^mskey-[0-9a-f]{12}-[0-9a-f]{48}$/);
    assert.ok(await page.getByRole('img', { name: /^QR code of / }).isVisible());
    // the page asked for a join string at its own address: it holds this key, pinned to this server
    const joinText = await page.getByLabel('Join string', { exact: true }).inputValue();
    assert.equal(parseJoin(joinText).authKey, keyText);
    const id = keyText.slice(6, 18);
    await page.screenshot({ path: join(ARTIFACTS, 'admin-keys-created-desktop.png'), fullPage: true });
    await page.getByRole('button', { name: 'Done, hide it' }).click();
    await page.getByRole('button', { name: `Revoke key ${id}` }).click();
    await page.locator(`tr[data-key="${id}"] td.state`).getByText('revoked').waitFor({ timeout: UI_WAIT_MS });
    const keys = (await web(h, 'GET', '/admin/api/authkeys', { headers: bearer(token) })).body as unknown as { id: string; revoked: boolean }[];
    assert.equal(keys.find((k) => k.id === id)?.revoked, true);

    // a policy with an error: the page names its line and column
    await page.getByRole('link', { name: 'Policy' }).click();
    await page.getByLabel('Policy (HuJSON)').fill('{\n  "acls": [\n    { "action": "accept", "src": ["group:nope"], "dst": ["*:*"] }\n  ]\n}\n');
    await page.getByRole('button', { name: 'Check' }).click();
    await page.getByRole('button', { name: /^line 3:\d+$/ }).waitFor({ timeout: UI_WAIT_MS });
    await page.screenshot({ path: join(ARTIFACTS, 'admin-policy-error-desktop.png'), fullPage: true });

    // delete beta: it leaves the page and the API's node list, and its map stream is ended
    await page.getByRole('link', { name: 'Nodes' }).click();
    await page.getByRole('button', { name: 'Delete beta' }).click();
    await page.getByRole('button', { name: 'Confirm: delete beta' }).click();
    await row('beta').waitFor({ state: 'detached', timeout: UI_WAIT_MS });
    await beta.stream.ended;
    const names = ((await web(h, 'GET', '/admin/api/nodes', { headers: bearer(token) })).body as unknown as { name: string }[]).map((n) => n.name);
    assert.deepEqual(names, ['alpha']);

    // a write with the session cookie but without the CSRF header is refused, and changes nothing
    const noCsrf = await page.evaluate(async () => {
      const r = await fetch('/admin/api/nodes/delete', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"node":"alpha"}' });
      return r.status;
    });
    assert.equal(noCsrf, 403);
    assert.equal(((await web(h, 'GET', '/admin/api/nodes', { headers: bearer(token) })).body as unknown as unknown[]).length, 1);
    // without credentials (no cookie): 401
    const anon = await page.evaluate(async () => (await fetch('/admin/api/nodes', { credentials: 'omit' })).status);
    assert.equal(anon, 401);

    await shootAll(page, h, '');
    assert.deepEqual(cspErrors, [], 'the page runs under its CSP without violations');

    // a fresh browser without a session sees the login form, not data
    const other = await browser.newContext({ ignoreHTTPSErrors: true });
    const p2 = await other.newPage();
    await p2.goto(`${h.url}/admin/#/nodes`);
    await p2.getByLabel('Admin token').waitFor();
    await p2.setViewportSize(VIEWPORTS.phone);
    await p2.screenshot({ path: join(ARTIFACTS, 'admin-login-phone.png') });
    assert.deepEqual(await axeViolations(p2), [], 'axe on the login page');
    await other.close();
  } finally {
    await browser?.close();
    alpha.stream.req.destroy();
    beta.stream.req.destroy();
    await h.close();
  }
});
