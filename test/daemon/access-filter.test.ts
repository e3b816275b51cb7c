// The daemon's side of the access filter: each map's packetFilter reaches the
// engine's seam, one filter is kept across maps (a new rule set keeps the flow
// table), a map with no packetFilter removes it, and rules that do not compile
// leave a filter that refuses every new inbound flow rather than none; a new
// engine gets the same filter and tables, emptied.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessFilter } from '../../src/daemon/access-filter.js';
import { AclFilter } from '../../src/engine/device/acl-filter.js';
import type { EngineHost } from '../../src/daemon/engine-host.js';
import type { PacketFilterHooks } from '../../src/engine/device/filter.js';
import { FakeClock } from '../../src/engine/clock.js';
import { ipv4Packet } from '../helpers/memnet.js';
import type { FilterRule } from '../../src/netmap/types.js';

/** UDP from `src` port 1000 to `dst` port `dport` */
function udp(src: string, dst: string, sport: number, dport: number): Buffer {
  const p = ipv4Packet(src, dst, 12);
  p.writeUInt16BE(sport, 20);
  p.writeUInt16BE(dport, 22);
  return p;
}

test('access filter in the daemon: installed with the first packetFilter, swapped in place, removed with none, closed on bad rules', () => {
  const installs: (Pick<PacketFilterHooks, 'filterIn' | 'filterOut'> | null)[] = [];
  const host = { clock: new FakeClock(), setAccessFilter: (h: Pick<PacketFilterHooks, 'filterIn' | 'filterOut'> | null) => installs.push(h) };
  const logs: string[] = [];
  const af = new AccessFilter((m) => logs.push(m));
  const h = host as unknown as EngineHost;
  af.apply(h, undefined);
  assert.equal(installs.length, 0, 'no policy: nothing installed, no cost');
  assert.equal(af.stats(), null);
  const dns: FilterRule[] = [{ srcIps: ['100.64.0.1/32'], dstPorts: [{ ip: '100.64.0.2/32', first: 53, last: 53 }], protocols: [17] }];
  af.apply(h, dns);
  assert.equal(installs.length, 1);
  const hooks = installs[0]!;
  assert.equal(hooks.filterIn!(udp('100.64.0.1', '100.64.0.2', 1000, 53)), true);
  assert.equal(hooks.filterIn!(udp('100.64.0.1', '100.64.0.2', 1000, 54)), false);
  hooks.filterOut!(udp('100.64.0.2', '100.64.0.9', 2000, 443));
  af.apply(h, [...dns]);
  assert.equal(installs.length, 1, 'the next map swaps the rules of the installed filter');
  assert.equal(hooks.filterIn!(udp('100.64.0.9', '100.64.0.2', 443, 2000)), true, 'and its flows live on');
  af.apply(h, [{ srcIps: ['not-a-prefix'], dstPorts: [], protocols: [] }]);
  assert.match(logs[0] ?? '', /packet filter: .*refusing new inbound flows/);
  assert.equal(hooks.filterIn!(udp('100.64.0.1', '100.64.0.2', 1001, 53)), false, 'bad rules: closed, not open');
  assert.equal(af.stats()!.rules, 0);
  af.apply(h, undefined);
  assert.equal(installs.at(-1), null, 'the policy went away: the filter is removed');
  assert.equal(af.stats(), null);
});

test('access filter across engine restarts: one filter and one set of flow tables, emptied for each new engine', () => {
  const clock = new FakeClock();
  let made = 0;
  const af = new AccessFilter(() => {}, {
    create: (c) => {
      made++;
      return new AclFilter([], { clock: c, maxFlows: 64, maxFragments: 8 });
    },
  });
  const dns: FilterRule[] = [{ srcIps: ['100.64.0.1/32'], dstPorts: [{ ip: '100.64.0.2/32', first: 53, last: 53 }], protocols: [17] }];
  const ENGINES = 20;
  for (let i = 0; i < ENGINES; i++) {
    // a new engine as `down` and `up` make it, on the daemon's one clock
    let hooks: Pick<PacketFilterHooks, 'filterIn' | 'filterOut'> | null = null;
    const host = { clock, setAccessFilter: (h: Pick<PacketFilterHooks, 'filterIn' | 'filterOut'> | null) => (hooks = h) } as unknown as EngineHost;
    af.apply(host, dns);
    const h = hooks as Pick<PacketFilterHooks, 'filterIn' | 'filterOut'> | null;
    assert.ok(h, `engine ${i}: the filter is installed`);
    assert.equal(af.stats()!.flows, 0, `engine ${i}: the last engine's flows are gone`);
    assert.equal(h.filterIn!(udp('100.64.0.9', '100.64.0.2', 443, 2000)), false, 'a reply to a flow of the last engine is not let in');
    h.filterOut!(udp('100.64.0.2', '100.64.0.9', 2000, 443));
    assert.equal(h.filterIn!(udp('100.64.0.9', '100.64.0.2', 443, 2000)), true, 'this engine tracks its own flows');
    assert.equal(af.stats()!.flows, 1);
    // and a policy that goes away and comes back on the same engine
    af.apply(host, undefined);
    assert.equal(af.stats(), null);
    af.apply(host, dns);
    assert.equal(af.stats()!.flows, 0, 'flows from before the policy went away are forgotten');
  }
  assert.equal(made, 1, `${ENGINES} engines and ${ENGINES} policy changes made one filter, not one each`);
  // an engine on another clock (tests) gets a filter of its own
  af.apply({ clock: new FakeClock(), setAccessFilter: () => {} } as unknown as EngineHost, dns);
  assert.equal(made, 2);
});
