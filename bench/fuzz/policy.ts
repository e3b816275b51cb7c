// The access policy's parser and compiler (src/policy): a policy file is an
// operator's input, but `control policy set` takes it over a socket and a
// typo must never crash control or yield rules a node refuses. Inputs: a
// valid policy as JSON, its JSON mutations, damaged text (JSONC comments and
// trailing commas kept valid in the seed) and random JSON. Checked: only
// PolicyError / PolicyTestError come out, with a line:col inside the text;
// an accepted policy compiles for a few nodes into packet filters that the
// node's strict map parser accepts.
import { parseFilterRule } from '../../src/netmap/parse.js';
import { PolicyEngine } from '../../src/policy/engine.js';
import { loadPolicy, PolicyError, PolicyTestError } from '../../src/policy/load.js';
import type { PolicyNode } from '../../src/policy/types.js';
import { check, fuzzLoop, type FuzzTarget } from './harness.js';
import { jsonText, mutateJson, randomJson } from './mutate.js';
import type { Rng } from './rng.js';

function policy(r: Rng): Record<string, unknown> {
  return {
    groups: { 'group:admins': r.pick([['alice'], ['alice', 'bob']]) },
    tagOwners: { 'tag:nas': ['group:admins'], 'tag:router': [] },
    hosts: { printer: r.pick(['192.168.1.5', '10.0.0.0/8', 'fd00::1']) },
    acls: Array.from({ length: r.range(1, 4) }, () => ({
      action: 'accept',
      src: [r.pick(['group:admins', '*', 'autogroup:member', 'tag:nas', '100.64.0.0/10', 'bob', 'host:printer'])],
      dst: [r.pick(['tag:nas:22,443', 'autogroup:self:*', '*:*', 'host:printer:631', 'alice:8000-8999', '[fd00::1]:22', '10.0.0.0/8:*'])],
      ...(r.bool() ? { proto: r.pick(['tcp', 'udp', 6, ['tcp', 'icmp']]) } : {}),
    })),
    autoApprovers: { routes: { '10.0.0.0/8': ['tag:router'] }, exitNode: ['group:admins'] },
    ...(r.bool() ? { tests: [{ src: 'alice', accept: [], deny: [r.pick(['tag:nas:5432', 'bob:22'])] }] } : {}),
  };
}

const NODES: PolicyNode[] = [
  { id: 1, user: 'alice', tags: [], addresses: ['100.64.0.1', 'fd7a:115c:a1e0::1'], routes: [], exitNode: false, deviceAddresses: [] },
  { id: 2, user: null, tags: ['tag:nas'], addresses: ['100.64.0.2', 'fd7a:115c:a1e0::2'], routes: [], exitNode: false, deviceAddresses: [] },
  {
    id: 3,
    user: null,
    tags: ['tag:router'],
    addresses: ['100.64.0.3', 'fd7a:115c:a1e0::3'],
    routes: ['10.1.0.0/16'],
    exitNode: true,
    deviceAddresses: ['100.64.9.9'],
  },
  { id: 4, user: 'bob', tags: [], addresses: ['100.64.0.4', 'fd7a:115c:a1e0::4'], routes: [], exitNode: false, deviceAddresses: [] },
];

const target: FuzzTarget = {
  name: 'policy',
  kind: 'pure',
  description: 'parsePolicy and the compiler: typed refusals with a line:col in the text; what passes compiles into rules the map parser accepts',
  run: (rng, iterations, onProgress) =>
    fuzzLoop(
      rng,
      iterations,
      onProgress,
      (r, ctx) => {
        const valid = policy(r);
        const kind = r.int(8);
        let text: string;
        if (kind <= 1) text = JSON.stringify(valid, null, 2).replace('{', '{\n  // a comment\n');
        else if (kind <= 5) text = JSON.stringify(mutateJson(r, valid));
        else if (kind === 6) text = jsonText(r, valid, 1);
        else text = JSON.stringify(randomJson(r));
        ctx.input = text;
        try {
          const p = loadPolicy(text);
          const engine = new PolicyEngine(p, ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'], NODES);
          for (const n of NODES) {
            for (const [i, rule] of (engine.filterOf(n.id) ?? []).entries()) {
              const back = parseFilterRule(JSON.parse(JSON.stringify(rule)), `packetFilter[${i}]`);
              check(JSON.stringify(back) === JSON.stringify(rule), `node ${n.id} rule ${i} is not canonical`);
            }
          }
          return 'accepted';
        } catch (err) {
          if (err instanceof PolicyError) {
            const lines = text.split('\n');
            check(
              err.line >= 1 && err.line <= lines.length && err.col >= 1 && err.col <= lines[err.line - 1]!.length + 1,
              `position ${err.line}:${err.col} outside the text`,
            );
            return 'rejected';
          }
          if (err instanceof PolicyTestError) return 'rejected';
          throw err;
        }
      },
      { typedError: () => false },
    ),
};

export default target;
