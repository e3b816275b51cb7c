// Control's liveness signal, on a real link: a control server in one network
// namespace, a node holding its map stream from another, joined by a veth.
// The link is then cut (nftables drops every packet both ways: no FIN, no RST, as when a
// router's uplink dies), and the node must show offline in `control nodes
// list` within 15 s, which TCP alone takes minutes to notice.
import { test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { admin } from '../../src/control/admin-client.js';
import { packageRoot } from '../../src/cli/version.js';
import { Lab, must } from '../helpers/netns.js';
import { rootSkipReason } from '../helpers/root.js';
import { until } from './helpers.js';

const skip = rootSkipReason('nft');
/** The failover goal: a router's peers move to another within 15 s of its link going down. */
const OFFLINE_GOAL_MS = 15_000;

/** A node that registers and then only holds its map stream, printing each line's type. */
const NODE_SCRIPT = (clientModule: string): string => `
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ControlClient } from ${JSON.stringify(clientModule)};
const [url, caFile, authKey] = process.argv.slice(2);
const c = new ControlClient(url, readFileSync(caFile, 'utf8'), randomBytes(32));
const disco = Buffer.alloc(32, 7).toString('base64');
await c.call('register', { authKey, hostname: 'router', os: 'linux', version: 't', discoKey: disco, endpoints: [] }, 10000);
const s = await c.openMap({ endpoints: [], discoKey: disco }, (l) => console.log(l.type), 600000);
console.log('open');
await s.done;
console.log('closed');
`;

/** The child's stdout so far. */
function collect(p: import('node:child_process').ChildProcess): () => string {
  let out = '';
  p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  p.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return () => out;
}

test('a node whose link is cut is offline at control within 15 s (TCP_USER_TIMEOUT and keepalive lines)', { skip, timeout: 90_000 }, async () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-liveness-'));
  try {
    const ctl = await lab.netns('c');
    const node = await lab.netns('n');
    const [ca, cb] = await lab.link(ctl, '10.77.0.1/30', node, '10.77.0.2/30');
    const bin = join(packageRoot(), 'bin', 'meshctl');
    const server = lab.spawn(ctl, [process.execPath, bin, 'control', 'serve', '--listen', '10.77.0.1:8443', '--state-dir', dir]);
    const serverOut = collect(server);
    await until(() => /listening on/.test(serverOut()), 20_000, `control server up (${serverOut()})`);
    const authKey = (await admin.createAuthKey(dir, { reusable: true, ephemeral: false, expiryMs: null })).key;
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, await must(process.execPath, [bin, 'control', 'ca', '--state-dir', dir]));
    const script = join(dir, 'node.mjs');
    writeFileSync(script, NODE_SCRIPT(join(fileURLToPath(new URL('../../src/daemon/', import.meta.url)), 'control-client.js')));
    const child = lab.spawn(node, [process.execPath, script, 'https://10.77.0.1:8443', caFile, authKey]);
    const childOut = collect(child);
    await until(() => /open/.test(childOut()), 20_000, `node stream open (${childOut()})`);
    const state = async (): Promise<boolean | undefined> => (await admin.listNodes(dir)).find((n) => n.name === 'router')?.online;
    await until(async () => (await state()) === true, 10_000, 'node online');

    // the cut: every packet on the link dropped both ways in both namespaces, nothing tells either end
    for (const [ns, dev] of [
      [ctl, ca],
      [node, cb],
    ] as const) {
      const rules = [
        'table inet cut {',
        `  chain in { type filter hook input priority -300; policy accept; iifname "${dev}" drop; }`,
        `  chain out { type filter hook output priority -300; policy accept; oifname "${dev}" drop; }`,
        '}',
      ].join('\n');
      const rulesFile = join(dir, `cut-${dev}.nft`);
      writeFileSync(rulesFile, `${rules}\n`);
      await must('ip', ['netns', 'exec', ns, 'nft', '-f', rulesFile]);
    }
    const t0 = Date.now();
    await until(async () => (await state()) === false, OFFLINE_GOAL_MS, 'node offline at control after the cut');
    process.stderr.write(`liveness: offline ${Date.now() - t0} ms after the link was cut\n`);
  } finally {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
