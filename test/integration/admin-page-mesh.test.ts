// The admin page against real daemons in namespaces: each node's path counts,
// reported by its daemon, show on the page, and a node deleted from the page
// leaves the other daemon's `meshctl status`. Chromium runs inside the control
// server's namespace (a wrapper script enters it), so the test reaches the
// server without touching the host's network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { Status } from '../../src/localapi/types.js';
import { adminTokens } from '../../src/control/web/token-client.js';
import { rootSkipReason } from '../helpers/root.js';
import { eventually, MeshLab, type MeshNode } from '../helpers/mesh.js';

const CHROMIUM = '/usr/bin/chromium';
/** How long the page may take to show a change; a path report waits up to PATH_REPORT_MIN_INTERVAL_MS (10 s) after a change. */
const UI_WAIT_MS = 30_000;
const skip = rootSkipReason() || (existsSync(CHROMIUM) ? false : `${CHROMIUM} not found`);

async function peerNames(n: MeshNode): Promise<string[]> {
  const r = await n.run(['status', '--json']);
  assert.equal(r.code, 0, `status --json on ${n.name}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as Status).peers.map((p) => p.name);
}

test("the admin page shows the paths real daemons report, and a node deleted there leaves the other daemon's status", { skip, timeout: 180_000 }, async () => {
  const m = new MeshLab();
  let browser: Browser | null = null;
  try {
    await m.build(2);
    await m.startControl();
    const [n1, n2] = m.nodes as [MeshNode, MeshNode];
    const key = await m.authKey();
    for (const n of [n1, n2]) {
      const r = await m.up(n, ['--auth-key', key]);
      assert.equal(r.code, 0, `${n.name} up: ${r.stderr}`);
    }
    await eventually('node1 sees node2', async () => (await peerNames(n1)).includes('node2'), 20_000);
    const { token } = await adminTokens.create(m.controlDir, 'browser');

    const wrapper = join(m.dir, 'chromium-in-ns');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${m.controlNs} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    browser = await chromium.launch({ executablePath: wrapper, args: ['--no-sandbox'] });
    const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
    await page.goto(`${m.url}/admin/`);
    await page.getByLabel('Admin token').fill(token);
    await page.getByRole('button', { name: 'Log in' }).click();
    const row = (name: string) => page.locator(`tr[data-node="${name}"]`);
    // on one LAN the daemons' disco pings prove the direct path: each reports its one peer as direct
    for (const n of ['node1', 'node2']) await row(n).getByText('1 direct · 0 relay', { exact: true }).waitFor({ timeout: UI_WAIT_MS });

    await page.getByRole('button', { name: 'Delete node2' }).click();
    await page.getByRole('button', { name: 'Confirm: delete node2' }).click();
    await row('node2').waitFor({ state: 'detached', timeout: UI_WAIT_MS });
    await eventually("node2 gone from node1's status", async () => !(await peerNames(n1)).includes('node2'), 20_000);
  } finally {
    await browser?.close();
    await m.cleanup();
  }
});
