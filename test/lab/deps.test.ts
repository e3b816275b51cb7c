// The lab's package check (src/lab/deps.ts) in each install mode, with the
// question and apt-get injected: it asks before it installs, a "no" installs
// nothing, and a present package is never asked about.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureLabPackages, LabDepsError, missingLabPackages, needsAptUpdate, type AptResult } from '../../src/lab/deps.js';
import { debianDeps } from '../../src/util/tools.js';
import { makePathShim } from '../helpers/path-shim.js';

/** Stand-ins for the lab's programs: the check looks for executables on PATH and runs none. */
const PRESENT = { ip: '#!/bin/sh\nexit 1\n', nft: '#!/bin/sh\nexit 1\n', miniupnpd: '#!/bin/sh\nexit 1\n' };

const asRoot = { skip: process.getuid?.() === 0 ? false : 'installing needs root: checked as root only' };

function harness(answer: boolean) {
  const asked: string[] = [];
  const aptCalls: string[][] = [];
  const said: string[] = [];
  return {
    asked,
    aptCalls,
    said,
    ask: async (q: string) => {
      asked.push(q);
      return answer;
    },
    apt: async (args: string[]): Promise<AptResult> => {
      aptCalls.push(args);
      return { code: 0, stderr: '' };
    },
    say: (m: string) => void said.push(m),
  };
}

test('missing lab packages follow PATH and the node kinds', (t) => {
  const none = makePathShim(['nft', 'ip', 'miniupnpd']);
  const all = makePathShim([], PRESENT);
  t.after(() => (none.cleanup(), all.cleanup()));
  assert.deepEqual(missingLabPackages([], debianDeps(), none.dir), ['iproute2', 'nftables']);
  assert.deepEqual(missingLabPackages(['upnp'], debianDeps(), none.dir), ['iproute2', 'nftables', 'miniupnpd-nftables']);
  assert.deepEqual(missingLabPackages(['upnp'], debianDeps(), all.dir), []);
  assert.equal(needsAptUpdate('E: Unable to locate package nftables'), true);
  assert.equal(needsAptUpdate("E: Package 'nftables' has no installation candidate"), true);
  assert.equal(needsAptUpdate('E: Could not open lock file /var/lib/dpkg/lock-frontend'), false);
});

test('on a terminal it asks "install nftables, iproute2 with apt-get? [y/N]"; no means nothing installed', asRoot, async (t) => {
  const shim = makePathShim(['nft', 'ip']);
  t.after(shim.cleanup);
  const saved = process.env.PATH;
  process.env.PATH = shim.dir;
  t.after(() => (process.env.PATH = saved));
  const no = harness(false);
  await assert.rejects(
    ensureLabPackages({ kinds: [], mode: 'ask', ...no }),
    (e: Error) =>
      e instanceof LabDepsError &&
      /iproute2, nftables, and the answer was not yes: run `sudo apt-get install --no-install-recommends iproute2 nftables`/.test(e.message),
  );
  assert.deepEqual(no.asked, ['install iproute2, nftables with apt-get? [y/N] ']);
  assert.deepEqual(no.aptCalls, []);
  // yes: apt-get installs (here it "succeeds" but PATH still lacks them, which is said)
  const yes = harness(true);
  await assert.rejects(
    ensureLabPackages({ kinds: [], mode: 'ask', ...yes }),
    /apt-get installed iproute2, nftables, yet the programs of iproute2, nftables are still not on PATH/,
  );
  assert.deepEqual(yes.aptCalls, [['install', '-y', '--no-install-recommends', 'iproute2', 'nftables']]);
  // present: nothing asked, nothing run, in any mode
  const present = makePathShim([], PRESENT);
  t.after(present.cleanup);
  process.env.PATH = present.dir;
  for (const mode of ['ask', 'install', 'print', 'refuse'] as const) {
    const h = harness(true);
    await ensureLabPackages({ kinds: [], mode, ...h });
    assert.deepEqual([h.asked, h.aptCalls], [[], []], mode);
  }
});
