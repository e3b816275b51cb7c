// Policy routing requests: exact bytes of the rule and table-route messages,
// the dump parser on malformed input, and the whole life of meshctl's rules and
// table 52 on the real kernel, in a namespace this test makes
// (fixtures/rules-probe.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { parsePrefix } from '../../src/util/netaddr.js';
import {
  delDumpedRouteMessage,
  delRuleMessage,
  delTableRouteMessage,
  NetlinkFormatError,
  newRuleMessage,
  parseMessages,
  parseRoute,
  replaceTableRouteMessage,
} from '../../src/tun/netlink.js';
import { meshRules } from '../../src/tun/rules.js';
import { rootSkipReason } from '../helpers/root.js';
import { Lab } from '../helpers/netns.js';
import { packageRoot } from '../../src/cli/version.js';

const le = endianness() === 'LE';
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const skipBE = le ? false : 'byte layouts below are written for a little-endian host';

test('RTM_NEWRULE/RTM_DELRULE: fib_rule_hdr, FRA_PRIORITY, FRA_TABLE, FRA_FWMARK/FRA_FWMASK, unreachable', { skip: skipBE }, () => {
  const [marked, , unreachable, table] = meshRules(4);
  assert.deepEqual(
    newRuleMessage(1, marked!),
    hex(`3c000000 2000 0506 01000000 00000000
         02 00 00 00 fe 00 00 01 00000000
         0800 0600 5a140000
         0800 0f00 fe000000
         0800 0a00 00000800
         0800 1000 0000ff00`),
  );
  assert.deepEqual(
    newRuleMessage(2, unreachable!),
    hex(`34000000 2000 0506 02000000 00000000
         02 00 00 00 00 00 00 07 00000000
         0800 0600 82140000
         0800 0a00 00000800
         0800 1000 0000ff00`),
  );
  assert.deepEqual(
    delRuleMessage(3, { ...table!, family: 6 }),
    hex(`2c000000 2100 0500 03000000 00000000
         0a 00 00 00 34 00 00 01 00000000
         0800 0600 96140000
         0800 0f00 34000000`),
  );
  assert.throws(() => newRuleMessage(1, { family: 4, priority: 0, action: { kind: 'unreachable' } }), RangeError);
  assert.throws(() => newRuleMessage(1, { family: 4, priority: 5, fwmark: { mark: 0x10, mask: 0x1 }, action: { kind: 'unreachable' } }), RangeError);
  assert.throws(() => newRuleMessage(1, { family: 4, priority: 5, action: { kind: 'lookup', table: 0 } }), RangeError);
});

test('table routes: replace/delete carry RTA_TABLE; a dumped route is deleted by family, length, table and destination only', { skip: skipBE }, () => {
  assert.deepEqual(
    replaceTableRouteMessage(4, 7, parsePrefix('192.168.77.0/24'), 52),
    hex(`34000000 1800 0505 04000000 00000000
         02 18 00 00 34 03 fd 01 00000000
         0800 0100 c0a84d00
         0800 0400 07000000
         0800 0f00 34000000`),
  );
  assert.deepEqual(delTableRouteMessage(5, 7, parsePrefix('fd00:77::/64'), 52).subarray(4, 8), hex('1900 0500'));
  const dumped = { family: 4 as const, dst: hex('0a000000'), bits: 8, table: 52, oif: 9, type: 1 };
  assert.deepEqual(
    delDumpedRouteMessage(6, dumped),
    hex(`2c000000 1900 0500 06000000 00000000
         02 08 00 00 34 00 ff 00 00000000
         0800 0100 0a000000
         0800 0f00 34000000`),
  );
  // a default route names no destination
  assert.equal(delDumpedRouteMessage(6, { ...dumped, bits: 0, dst: Buffer.alloc(4) }).length, 16 + 12 + 8);
});

test('dump parsing: a route of table 52 read back; lengths that do not fit are NetlinkFormatError, never a crash', { skip: skipBE }, () => {
  const msg = replaceTableRouteMessage(4, 7, parsePrefix('192.168.77.0/24'), 52);
  const [m] = parseMessages(msg);
  assert.deepEqual(parseRoute(m!.body), { family: 4, dst: hex('c0a84d00'), bits: 24, table: 52, oif: 7, type: 1 });
  assert.throws(() => parseMessages(msg.subarray(0, 20)), NetlinkFormatError);
  const badLen = Buffer.from(msg);
  badLen.writeUInt16LE(200, 16 + 12); // first attribute claims 200 bytes
  assert.throws(() => parseRoute(parseMessages(badLen)[0]!.body), NetlinkFormatError);
  const badBits = Buffer.from(msg);
  badBits[17] = 40;
  assert.throws(() => parseRoute(parseMessages(badBits)[0]!.body), NetlinkFormatError);
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.from(msg);
    junk[Math.floor(Math.random() * junk.length)] = Math.floor(Math.random() * 256);
    try {
      for (const x of parseMessages(junk)) parseRoute(x.body);
    } catch (err) {
      assert.ok(err instanceof NetlinkFormatError, String(err));
    }
  }
});

interface IpRule {
  priority: number;
  fwmark?: string;
  fwmask?: string;
  table?: string;
  action?: string;
}
interface IpRoute {
  dst: string;
  dev?: string;
  table?: string;
}

test('rules 5210/5230/5250/5270 and table-52 routes on the real kernel: added once, used, removed, flushed', { skip: rootSkipReason() }, async () => {
  const lab = new Lab();
  try {
    const ns = await lab.netns('rl');
    const r = await lab.exec(ns, [process.execPath, join(packageRoot(), 'dist', 'test', 'tun', 'fixtures', 'rules-probe.js')], 30_000);
    assert.equal(r.code, 0, `probe failed: ${r.stderr}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      rulesAfterAdd: IpRule[];
      tableAfterAdd: IpRoute[];
      getInTable: IpRoute[];
      dumped: string[];
      tableAfterRemove: IpRoute[];
      hostBits: string;
      flushed: number;
      tableAfterFlush: IpRoute[];
      rulesAfterRemove: IpRule[];
    };
    const ours = (rules: IpRule[]): string[] =>
      rules
        .filter((x) => x.priority >= 5200 && x.priority < 5300)
        .map((x) => `${x.priority} ${x.fwmark ? `${x.fwmark}/${x.fwmask}` : '-'} ${x.action === 'unreachable' ? 'unreachable' : `lookup ${x.table}`}`);
    const want = ['5210 0x80000/0xff0000 lookup main', '5230 0x80000/0xff0000 lookup default', '5250 0x80000/0xff0000 unreachable', '5270 - lookup 52'];
    assert.deepEqual(ours(res.rulesAfterAdd), [...want, ...want], 'once per family, no copy from the repeat');
    assert.deepEqual(res.tableAfterAdd.map((x) => x.dst).sort(), ['10.200.0.0/16', '192.168.77.0/24', 'fd00:77::/64']);
    assert.equal(res.getInTable[0]?.table, '52', `route get chose table 52: ${JSON.stringify(res.getInTable)}`);
    assert.deepEqual(res.dumped.sort(), ['4/16/true', '4/24/true', '6/64/true']);
    assert.deepEqual(res.tableAfterRemove.map((x) => x.dst).sort(), ['192.168.77.0/24', 'fd00:77::/64']);
    assert.match(res.hostBits, /10\.1\.2\.3\/16.*network address/);
    assert.equal(res.flushed, 2);
    assert.deepEqual(res.tableAfterFlush, []);
    assert.deepEqual(ours(res.rulesAfterRemove), []);
  } finally {
    await lab.cleanup();
  }
});
