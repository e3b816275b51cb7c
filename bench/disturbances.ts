// What the soak does to a running lab, one disturbance at a time: a node `down`/`up`, a NAT router's WAN
// bounced, the policy switched, a relay restarted, a route advertised or withdrawn, the control server
// restarted. Nodes and regions are taken in turn. Shared by bench/soak.ts (one every few seconds, for
// minutes) and bench/growth.ts (all of them in a tight loop, to tell warm-up from a leak).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../src/lab/lab.js';
import type { LabNode } from '../src/lab/topology.js';
import type { LocalClient } from '../src/localapi/client.js';
import { LOCALAPI } from '../src/localapi/types.js';
import { sh } from '../test/helpers/netns.js';

/** Two policies the soak switches between: both let every flow through, so a switch must lose no traffic. */
export const SOAK_POLICIES = [
  '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}\n',
  '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}, {"action": "accept", "src": ["*"], "dst": ["*:22"]}]}\n',
];

/** A disturbance's name and its step; the step resolves to what it did (a node, a region, a pid). */
export type Disturbance = [kind: string, run: () => Promise<string>];

export interface DisturbanceOptions {
  /** The `meshctl` binary the lab runs (for `control policy set`). */
  bin: string;
  /** How long a node stays down before `up`. */
  downHoldMs: number;
  /** Told of each planned down, from the `down` request to the end of `up`. */
  onDown?: (node: string, fromMs: number, toMs: number) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The six disturbances, in the order they take turns, on `nodes` of `lab` (clients: each node's local API). */
export function disturbances(lab: Lab, nodes: LabNode[], clients: Map<string, LocalClient>, o: DisturbanceOptions): Disturbance[] {
  let nextDown = 0;
  let nextRebind = 0;
  let nextRoute = 0;
  let relayTurn = 0;
  let policyTurn = 0;
  const routeOn = new Set<string>();
  const natted = nodes.filter((n) => n.routerNs !== null);
  return [
    [
      'down/up',
      async () => {
        const n = nodes[nextDown++ % nodes.length]!;
        const from = Date.now();
        await clients.get(n.name)!.post(LOCALAPI.down);
        await sleep(o.downHoldMs);
        const r = await lab.up(n);
        o.onDown?.(n.name, from, Date.now());
        if (r.code !== 0) throw new Error(`${n.name}: up failed: ${r.err.trim().split('\n').pop()}`);
        return n.name;
      },
    ],
    [
      'NAT rebind',
      async () => {
        // a masquerading router forgets every mapping through an interface that goes down (the kernel's
        // masquerade notifier), as `conntrack -F` would: the flows through it get new ports
        const n = natted[nextRebind++ % natted.length]!;
        for (const state of ['down', 'up']) {
          const r = await sh('ip', ['-n', n.routerNs!, 'link', 'set', 'wan', state]);
          if (r.code !== 0) throw new Error(`${n.routerNs}: link ${state}: ${r.stderr.trim()}`);
        }
        return n.name;
      },
    ],
    [
      'policy',
      async () => {
        const file = join(lab.s.dir, 'disturbance-policy.json');
        writeFileSync(file, SOAK_POLICIES[policyTurn++ % SOAK_POLICIES.length]!);
        const r = await sh(process.execPath, [o.bin, 'control', 'policy', 'set', file, '--state-dir', join(lab.s.dir, 'control')]);
        if (r.code !== 0) throw new Error(`policy set: ${r.stderr.trim()}`);
        return `policy ${policyTurn % SOAK_POLICIES.length}`;
      },
    ],
    [
      'relay restart',
      async () => {
        const regions = Object.keys(lab.s.relayNs);
        const region = regions[relayTurn++ % regions.length]!;
        await lab.restartRelay(region);
        return region;
      },
    ],
    [
      'routes',
      async () => {
        const n = nodes[nextRoute++ % nodes.length]!;
        const on = !routeOn.has(n.name);
        const r = await lab.meshctl(n, ['set', '--advertise-routes', on ? `10.250.${n.index}.0/24` : '']);
        if (r.code !== 0) throw new Error(`${n.name}: set --advertise-routes: ${r.err.trim()}`);
        if (on) routeOn.add(n.name);
        else routeOn.delete(n.name);
        return `${n.name} ${on ? 'advertises' : 'withdraws'} 10.250.${n.index}.0/24`;
      },
    ],
    [
      'control restart',
      async () => {
        await lab.restartControl();
        return `pid ${lab.s.pids.control}`;
      },
    ],
  ];
}
