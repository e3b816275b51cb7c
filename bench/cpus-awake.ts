// `--cpus-awake` (diagnostic, with --rtt-only): one spinner per CPU, pinned and
// SCHED_IDLE, so no vCPU ever halts while both tunnels are pinged. A halted
// vCPU on this VM takes 70-120 µs to wake (docs/performance.md, "Method"),
// and where the kernel places each wake-up decides how many of those a round
// trip pays ("Latency"). With no vCPU halting, the difference
// that remains between the engines is their own code. SCHED_IDLE yields to any
// other thread at once, so the spinners take only time nothing else wants.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';

export interface Spinners {
  pids: number[];
  /** kills the spinners; also run at exit */
  stop(): void;
}

export function keepCpusAwake(): Spinners {
  const procs: ChildProcess[] = [];
  for (let cpu = 0; cpu < availableParallelism(); cpu++) {
    const p = spawn('taskset', ['-c', String(cpu), 'chrt', '--idle', '0', process.execPath, '-e', 'for (;;);'], { stdio: 'ignore' });
    p.on('error', (err) => console.error(`--cpus-awake: cannot start a spinner (${err.message}); taskset and chrt come with util-linux`));
    procs.push(p);
  }
  const stop = (): void => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    process.off('exit', stop);
  };
  process.on('exit', stop);
  return { pids: procs.map((p) => p.pid).filter((p): p is number => p !== undefined), stop };
}
