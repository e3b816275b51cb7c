// state.json and netmap.json read back through the strict parsers: a state
// that is JSON but wrong stops the daemon with one line naming the field and
// the file is left untouched; a corrupt netmap.json is reported and ignored;
// a full disk leaves the daemon's in-memory state equal to what is on disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backend } from '../../src/daemon/backend.js';
import { StateStore, type NodeState } from '../../src/daemon/state.js';
import { generatePrivateKey } from '../../src/crypto/x25519.js';
import type { NetworkMap, NodeView } from '../../src/netmap/types.js';
import { testNodeView } from './node-view.js';
import { tinyTmpfs, tmpfsSkipReason } from '../util/tmpfs.js';

const DEFAULTS = { ifname: 'meshtest0', port: 0 };

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'meshctl-state-'));
}

const view = (o: Partial<NodeView> = {}): NodeView => testNodeView(1, { name: 'alpha', ...o });

function goodState(): NodeState {
  return {
    version: 1,
    nodePrivateKey: generatePrivateKey().toString('base64'),
    discoPrivateKey: generatePrivateKey().toString('base64'),
    prefs: {
      loginServer: 'https://127.0.0.1:8443',
      loginServers: ['https://127.0.0.1:8443'],
      controlCaPem: null,
      controlPin: null,
      hostname: null,
      ifname: 'meshctl0',
      port: 41641,
      wantRunning: false,
      operator: null,
      acceptDns: true,
      advertiseRoutes: [],
      acceptRoutes: false,
      snatSubnetRoutes: true,
      advertiseExitNode: false,
      exitNode: '',
      exitNodeAllowLanAccess: false,
    },
    node: view(),
    ipv4Prefix: '100.64.0.0/10',
    ipv6Prefix: 'fd7a:115c:a1e0::/48',
  };
}

/** Writes `content` as state.json, loads it, and returns the error message; the file must be byte-for-byte unchanged and alone. */
function refusal(content: string): string {
  const dir = tempDir();
  try {
    const file = join(dir, 'state.json');
    writeFileSync(file, content, { mode: 0o600 });
    let message = '';
    assert.throws(
      () => new StateStore(dir).load(DEFAULTS),
      (err: Error) => ((message = err.message), true),
    );
    assert.equal(readFileSync(file, 'utf8'), content, 'the bad state.json is left as it was');
    assert.deepEqual(readdirSync(dir), ['state.json'], 'nothing written beside it');
    assert.ok(!message.includes('\n'), `one line: ${message}`);
    assert.match(message, /move the file away|restore it/);
    return message;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a state.json that is JSON but wrong is refused with one line naming the field, and left untouched', () => {
  assert.match(refusal('{"version":1}\n'), /state\.json: nodePrivateKey: not a 32-byte base64 private key: nothing \(missing\)/);
  const s = goodState();
  assert.match(refusal(JSON.stringify({ ...s, nodePrivateKey: 'AAAA' })), /nodePrivateKey: not a 32-byte base64 private key: "AAAA"/);
  assert.match(refusal(JSON.stringify({ ...s, version: 2 })), /version: state version 2; this meshctl reads version 1/);
  assert.match(refusal(JSON.stringify({ ...s, prefs: { ...s.prefs, port: 'x' } })), /prefs\.port: not a UDP port/);
  assert.match(refusal(JSON.stringify({ ...s, prefs: { ...s.prefs, ifname: 'eth0; rm -rf /' } })), /prefs\.ifname: not an interface name/);
  assert.match(refusal(JSON.stringify({ ...s, node: view({ addresses: ['100.64.0.1\n'] }) })), /node\.addresses\[0\]: not an IP address: "100\.64\.0\.1\\n"/);
  assert.match(refusal(JSON.stringify({ ...s, node: view({ addresses: ['100.64.0.1 dev lo'] }) })), /node\.addresses\[0\]: not an IP address/);
  assert.match(refusal(JSON.stringify({ ...s, ipv4Prefix: '0.0.0.0/0' })), /ipv4Prefix: 0\.0\.0\.0\/0 is wider than \/8/);
  assert.match(refusal(JSON.stringify({ ...s, ipv6Prefix: '100.64.0.0/10' })), /ipv6Prefix: expected an IPv6 prefix/);
  assert.match(refusal(JSON.stringify({ ...s, prefs: { ...s.prefs, acceptDns: 'no' } })), /prefs\.acceptDns: expected true or false, got "no"/);
  assert.match(refusal('[]'), /state: expected an object, got a list/);
  assert.match(refusal('{"nodePrivateKey":'), /is unreadable/);
});

test('a good state.json loads in canonical form (addresses as the OS will get them)', () => {
  const dir = tempDir();
  try {
    const s = goodState();
    s.node = view({ addresses: ['100.64.0.1', 'FD7A:115C:A1E0:0:0:0:0:1'], allowedIps: ['FD7A:115C:A1E0::1/128'] });
    writeFileSync(join(dir, 'state.json'), JSON.stringify(s));
    const loaded = new StateStore(dir).load(DEFAULTS);
    assert.deepEqual(loaded.node!.addresses, ['100.64.0.1', 'fd7a:115c:a1e0::1']);
    assert.deepEqual(loaded.node!.allowedIps, ['fd7a:115c:a1e0::1/128']);
    assert.equal(loaded.prefs.port, 41641);
    assert.equal(loaded.prefs.acceptDns, true);
    // a state.json written before accept-dns existed: the default, true
    const { acceptDns: _, ...older } = s.prefs;
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ ...s, prefs: older }));
    assert.equal(new StateStore(dir).load(DEFAULTS).prefs.acceptDns, true);
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ ...s, prefs: { ...s.prefs, acceptDns: false } }));
    assert.equal(new StateStore(dir).load(DEFAULTS).prefs.acceptDns, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a corrupt netmap.json is reported in one line and ignored', () => {
  const dir = tempDir();
  try {
    const store = new StateStore(dir);
    const logs: string[] = [];
    assert.equal(
      store.loadMap((m) => logs.push(m)),
      null,
    );
    assert.equal(logs.length, 0, 'no map is not an error');
    writeFileSync(store.mapFile, '{"self": 3');
    assert.equal(
      store.loadMap((m) => logs.push(m)),
      null,
    );
    const map: NetworkMap = {
      self: view(),
      peers: [view({ id: 2, name: 'beta', addresses: ['100.64.0.2', 'not-an-ip'] })],
      ipv4Prefix: '100.64.0.0/10',
      ipv6Prefix: 'fd7a:115c:a1e0::/48',
      relays: [],
    };
    writeFileSync(store.mapFile, JSON.stringify(map));
    assert.equal(
      store.loadMap((m) => logs.push(m)),
      null,
    );
    assert.equal(logs.length, 2);
    assert.match(logs[0]!, /netmap\.json is corrupt \(.*JSON.*\): ignored/);
    assert.match(logs[1]!, /netmap\.json is corrupt \(peers\[0\]\.addresses\[1\]: not an IP address: "not-an-ip"\): ignored/);
    for (const l of logs) assert.ok(!l.includes('\n'));
    map.peers[0]!.addresses = ['100.64.0.2'];
    writeFileSync(store.mapFile, JSON.stringify(map));
    assert.equal(store.loadMap((m) => logs.push(m))?.peers[0]?.name, 'beta');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the daemon refuses to start on a bad state.json, and does not crash on a corrupt netmap.json', async () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'state.json'), '{"version":1}');
    assert.throws(() => new Backend({ stateDir: dir, defaults: DEFAULTS, version: 't', logger: () => {} }), /nodePrivateKey/);
    rmSync(join(dir, 'state.json'));
    writeFileSync(join(dir, 'netmap.json'), '{{{');
    const b = new Backend({ stateDir: dir, defaults: DEFAULTS, version: 't', logger: () => {} });
    await b.resume();
    assert.equal(b.status().backendState, 'NeedsLogin');
    await b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('on a full disk a state change throws and the in-memory state stays what is on disk', { skip: tmpfsSkipReason() }, async () => {
  const fs = tinyTmpfs(64);
  let b: Backend | null = null;
  try {
    b = new Backend({ stateDir: fs.dir, defaults: DEFAULTS, version: 't', logger: () => {} });
    // fill what is left
    const filler = join(fs.dir, 'filler');
    let size = 64 * 1024;
    for (;;) {
      try {
        writeFileSync(filler, Buffer.alloc(size), { flag: 'a' });
      } catch {
        if (size === 1) break;
        size = Math.max(1, size >> 1);
      }
    }
    await assert.rejects(b.setPrefs({ operator: 'alice' }), /^ApiError: cannot save .*state\.json \(ENOSPC\): the change was not made/);
    assert.equal(b.operator(), null, 'the in-memory state does not claim what is not on disk');
    assert.equal(JSON.parse(readFileSync(join(fs.dir, 'state.json'), 'utf8')).prefs.operator, null);
    assert.deepEqual(readdirSync(fs.dir).sort(), ['filler', 'state.json']);
    rmSync(filler);
    await b.setPrefs({ operator: 'alice' });
    assert.equal(b.operator(), 'alice');
    assert.equal(JSON.parse(readFileSync(join(fs.dir, 'state.json'), 'utf8')).prefs.operator, 'alice');
  } finally {
    await b?.close();
    fs.cleanup();
  }
});
