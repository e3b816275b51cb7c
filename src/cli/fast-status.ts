// `meshctl status` and `meshctl status --json` without commander or the other
// commands: the commands people and scripts run most, at Node's startup cost
// and little more (goal: 150 ms wall). bin/meshctl sends exactly those argument
// lists here; anything else goes through main.ts, which prints the same output.
import { LocalClient, DaemonNotRunning } from '../localapi/client.js';
import { DEFAULT_SOCKET, LOCALAPI, type Status } from '../localapi/types.js';
import { fromApi } from './errors.js';
import { formatStatus, stoppedMessage } from './status-format.js';
import { socketFromEnv } from '../util/knobs.js';

/** The argument lists this path serves, or null: [--socket PATH] status [--json]. */
export function fastStatusArgs(argv: string[]): { socket: string; json: boolean } | null {
  let socket = socketFromEnv() ?? DEFAULT_SOCKET;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--socket' && i + 1 < argv.length) socket = argv[++i]!;
    else rest.push(argv[i]!);
  }
  if (rest[0] !== 'status' || rest.length > 2) return null;
  if (rest.length === 2 && rest[1] !== '--json') return null;
  return { socket, json: rest.length === 2 };
}

export async function fastStatus(o: { socket: string; json: boolean }): Promise<void> {
  let s: Status;
  try {
    s = await new LocalClient(o.socket).get<Status>(LOCALAPI.status);
  } catch (err) {
    const e = err instanceof DaemonNotRunning && !o.json ? { message: 'meshctl is stopped.', exitCode: 1 } : fromApi(err, o.socket);
    process.stderr.write(`${e.message}\n`);
    process.exitCode = e.exitCode;
    return;
  }
  if (o.json) return void process.stdout.write(JSON.stringify(s, null, 2) + '\n');
  const stopped = stoppedMessage(s);
  if (stopped) {
    process.stderr.write(`${stopped}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(formatStatus(s, { self: true, peers: true, activeOnly: false }));
}
