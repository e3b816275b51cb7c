import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { keepCpusAwake } from '../../bench/cpus-awake.js';

const SCHED_IDLE = 5;
const NODE = realpathSync(process.execPath);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * policy (field 41 of /proc/PID/stat, counted after the parenthesised name),
 * allowed CPUs, and whether the process is node yet: taskset and chrt exec it in
 * turn, and their command lines hold the same script, so the binary tells.
 */
function spinnerState(pid: number): { policy: number; cpus: string; node: boolean } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpus = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return { policy: Number(fields[41 - 3]), cpus, node: readlinkSync(`/proc/${pid}/exe`) === NODE };
}

test('--cpus-awake: one SCHED_IDLE spinner pinned to each CPU, all gone after stop', async () => {
  const s = keepCpusAwake();
  try {
    assert.equal(s.pids.length, availableParallelism());
    for (let i = 0; i < 50 && !s.pids.every((p) => spinnerState(p).node); i++) await sleep(20);
    s.pids.forEach((pid, cpu) => assert.deepEqual(spinnerState(pid), { policy: SCHED_IDLE, cpus: String(cpu), node: true }));
  } finally {
    s.stop();
  }
  for (let i = 0; i < 50 && s.pids.some((p) => existsSync(`/proc/${p}`)); i++) await sleep(20);
  assert.deepEqual(
    s.pids.filter((p) => existsSync(`/proc/${p}`)),
    [],
  );
});
