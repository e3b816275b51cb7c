// Waiting for the first answered ping, to ~20 ms: ping sends every 20 ms until
// one reply comes (-c 1 with a deadline). A loop of `ping -c 1 -W 1` would wait
// a whole second for each probe lost while the tunnel comes up, so `up` → first
// ping would move in steps of a second. ping gives up at once while the address
// has no route yet (the interface is still being made), so that is retried.
import { sh } from '../test/helpers/netns.js';

export async function firstReply(ns: string, ip: string, deadlineMs: number): Promise<void> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    const left = Math.ceil((end - performance.now()) / 1000);
    if (left <= 0) throw new Error(`no ping answered by ${ip} within ${deadlineMs} ms`);
    const r = await sh('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', '1', '-i', '0.02', '-w', String(left), ip], (left + 5) * 1000);
    if (r.code === 0) return;
    await new Promise((res) => setTimeout(res, 20));
  }
}
