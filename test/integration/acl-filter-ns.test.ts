// The access filter on real kernels: two engines (`meshctl debug engine`) in
// two namespaces, each enforcing a rule set (MESHCTL_ENGINE_ACL_RULES) as a
// node enforces its map's packetFilter. The NAS lets alice's laptop reach port
// 22 and nothing else; the laptop lets nothing open a flow to it. So the laptop
// reaches the NAS on 22 but not on 5432, and the NAS (a tagged server) answers
// the laptop but cannot open a connection to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootSkipReason } from '../helpers/root.js';
import { Lab } from '../helpers/netns.js';
import { addPeer, startPeer } from '../helpers/wg-peer.js';
import type { FilterRule } from '../../src/netmap/types.js';

const skip = rootSkipReason('socat');
const LAPTOP = '10.78.0.1';
const NAS = '10.78.0.2';

test('namespaces: the laptop reaches the NAS on 22, not on 5432; the NAS answers but cannot open a connection to the laptop', { skip }, async () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'mcacl-'));
  lab.onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  try {
    const nasRules: FilterRule[] = [{ srcIps: [`${LAPTOP}/32`], dstPorts: [{ ip: `${NAS}/32`, first: 22, last: 22 }], protocols: [6] }];
    writeFileSync(join(dir, 'nas.json'), JSON.stringify(nasRules));
    writeFileSync(join(dir, 'laptop.json'), '[]');
    const nsL = await lab.netns('l');
    const nsN = await lab.netns('n');
    await lab.link(nsL, '10.77.0.1/24', nsN, '10.77.0.2/24');
    const laptop = await startPeer(lab, 'meshctl', nsL, {
      port: 51820,
      inner4: `${LAPTOP}/24`,
      inner6: 'fd78::1/64',
      env: { MESHCTL_ENGINE_ACL_RULES: join(dir, 'laptop.json') },
    });
    const nas = await startPeer(lab, 'meshctl', nsN, {
      port: 51820,
      inner4: `${NAS}/24`,
      inner6: 'fd78::2/64',
      env: { MESHCTL_ENGINE_ACL_RULES: join(dir, 'nas.json') },
    });
    await addPeer(lab, laptop, nas, `${NAS}/32`, '10.77.0.2:51820');
    await addPeer(lab, nas, laptop, `${LAPTOP}/32`, '10.77.0.1:51820');
    // a service on each port, answering one line
    for (const [ns, port] of [
      [nsN, 22],
      [nsN, 5432],
      [nsL, 22],
    ] as const) {
      lab.spawn(ns, ['socat', `TCP-LISTEN:${port},bind=${ns === nsN ? NAS : LAPTOP},reuseaddr,fork`, `SYSTEM:echo open-${port}`]);
    }
    const connect = async (ns: string, host: string, port: number, timeoutS: number): Promise<string> => {
      const r = await lab.exec(ns, ['socat', '-u', `TCP:${host}:${port},connect-timeout=${timeoutS}`, '-'], (timeoutS + 5) * 1000);
      return r.code === 0 ? r.stdout.trim() : `failed: ${r.stderr.trim()}`;
    };
    // the first connection also waits for the handshake and the listener: retried until a deadline
    let ssh = '';
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && ssh !== 'open-22'; ) ssh = await connect(nsL, NAS, 22, 3);
    assert.equal(ssh, 'open-22', 'the laptop reaches the NAS on 22');
    assert.match(await connect(nsL, NAS, 5432, 2), /^failed/, 'but not on 5432');
    assert.match(await connect(nsN, LAPTOP, 22, 2), /^failed/, 'the NAS cannot open a connection to the laptop');
    assert.equal(await connect(nsL, NAS, 22, 3), 'open-22', 'and still answers it');
    const nasAcl = (await nas.stats()).acl!;
    const laptopAcl = (await laptop.stats()).acl!;
    assert.ok(nasAcl.droppedNoRule >= 1, `the NAS counted the SYNs to 5432: ${JSON.stringify(nasAcl)}`);
    assert.ok(laptopAcl.droppedNoRule >= 1, `the laptop counted the NAS's SYNs: ${JSON.stringify(laptopAcl)}`);
  } finally {
    await lab.cleanup();
  }
});
