// The real `wg` tool against meshctl's engine, and the same malformed UAPI
// requests sent raw to meshctl and to wireguard-go: the answers must match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootSkipReason } from '../helpers/root.js';
import { Lab, must } from '../helpers/netns.js';
import { startPeer } from '../helpers/wg-peer.js';

const skip = rootSkipReason('wg', 'wireguard-go', 'ss');

function raw(ifname: string, request: string): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(`/var/run/wireguard/${ifname}.sock`);
    let out = '';
    c.on('data', (d) => {
      out += d.toString();
      if (out.endsWith('\n\n')) c.end();
    });
    c.on('close', () => resolve(out));
    c.on('error', () => resolve(out));
    c.write(request);
    setTimeout(() => c.destroy(), 3000).unref();
  });
}

test('wg show / set / setconf / showconf work against meshctl as against wireguard-go', { skip }, async () => {
  const lab = new Lab();
  try {
    const ns = await lab.netns('u');
    const mc = await startPeer(lab, 'meshctl', ns, { port: 51900, inner4: '10.79.0.1/24', inner6: 'fd79::1/64' });
    const go = await startPeer(lab, 'wireguard-go', ns, { port: 51901, inner4: '10.79.1.1/24', inner6: 'fd79:1::1/64' });
    const peerPub = (await must('sh', ['-c', 'wg genkey | wg pubkey'])).trim();
    for (const p of [mc, go]) {
      const r = await lab.exec(ns, [
        'wg',
        'set',
        p.ifname,
        'peer',
        peerPub,
        'endpoint',
        '127.0.0.1:51820',
        'allowed-ips',
        '10.9.0.0/24,fd00::/64',
        'persistent-keepalive',
        '25',
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    const confs = await Promise.all([mc, go].map((p) => must('ip', ['netns', 'exec', ns, 'wg', 'showconf', p.ifname])));
    const norm = (s: string) => s.replace(/ListenPort = \d+/, 'ListenPort = X').replace(/PrivateKey = .*/, 'PrivateKey = X');
    assert.equal(norm(confs[0]!), norm(confs[1]!), 'showconf differs between meshctl and wireguard-go');
    // setconf round trip
    const dir = mkdtempSync(join(tmpdir(), 'mcconf-'));
    writeFileSync(join(dir, 'c.conf'), confs[0]!);
    assert.equal((await lab.exec(ns, ['wg', 'setconf', mc.ifname, join(dir, 'c.conf')])).code, 0);
    assert.equal(norm(await must('ip', ['netns', 'exec', ns, 'wg', 'showconf', mc.ifname])), norm(confs[0]!));
    const show = await must('ip', ['netns', 'exec', ns, 'wg', 'show', mc.ifname]);
    assert.match(show, /persistent keepalive: every 25 seconds/);
    assert.match(show, /allowed ips: 10\.9\.0\.0\/24, fd00::\/64/);
    // invalid input: wg fails on both, and raw answers carry the same errno
    for (const p of [mc, go]) {
      const r = await lab.exec(ns, ['wg', 'set', p.ifname, 'peer', peerPub, 'allowed-ips', '10.0.0.0/40']);
      assert.notEqual(r.code, 0);
    }
    for (const req of [
      'set=1\nbogus_key=1\n\n',
      `set=1\npublic_key=${'0'.repeat(63)}\n\n`,
      'set=1\nlisten_port=99999\n\n',
      `set=1\npublic_key=${Buffer.from(peerPub, 'base64').toString('hex')}\nprotocol_version=2\n\n`,
    ]) {
      const [a, b] = await Promise.all([raw(mc.ifname, req), raw(go.ifname, req)]);
      assert.equal(a, b, `answers differ for ${JSON.stringify(req)}`);
      assert.match(a, /^errno=-\d+\n\n$/);
    }
    // a listen port already taken: the same errno from both, and meshctl keeps its old port and keeps working
    // one after the other: in parallel each would race to take the port the other is leaving
    const inUseMc = await raw(mc.ifname, 'set=1\nlisten_port=51901\n\n');
    const inUseGo = await raw(go.ifname, 'set=1\nlisten_port=51900\n\n');
    assert.equal(inUseMc, inUseGo);
    assert.match(inUseMc, /^errno=-98\n\n$/);
    assert.match(await raw(mc.ifname, 'get=1\n\n'), /listen_port=51900\n/);
    const bound = await must('ip', ['netns', 'exec', ns, 'ss', '-uln']);
    assert.match(bound, /:51900\b/, 'meshctl still listens on its old port');
    // unknown operation: both drop the connection without an answer
    const [a, b] = await Promise.all([raw(mc.ifname, 'hello\n\n'), raw(go.ifname, 'hello\n\n')]);
    assert.equal(a, b);
    assert.equal(mc.proc.exitCode, null);
  } finally {
    await lab.cleanup();
  }
});
