// `meshctl status` and `meshctl status --json` without commander or the other
// commands: the commands people and scripts run most, at Node's startup cost
// and little more (goal: 150 ms wall). bin/meshctl sends exactly those argument
// lists here; anything else goes through main.ts, which prints the same output.
import { LocalClient, DaemonNotRunning } from '../localapi/client.js';
import { ApiError, DEFAULT_SOCKET, LOCALAPI, STATUS_FORMAT_HEADER, type Status } from '../localapi/types.js';
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

const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f]/;

/**
 * The daemon's pretty status text as `status --json` prints it, when it is that: the daemon said so, and it holds no
 * control character but JSON.stringify's own newlines (a string's are escaped in JSON), so nothing in it can drive a
 * terminal. Null: parse and write it here.
 */
export function printableStatusText(text: string, headers: Record<string, string | string[] | undefined>): string | null {
  if (headers[STATUS_FORMAT_HEADER] !== 'pretty') return null;
  // JSON.stringify escapes U+0000-U+001F inside strings; its own layout adds only newlines and spaces
  return CONTROL_BUT_NEWLINE.test(text) ? null : text;
}

export async function fastStatus(o: { socket: string; json: boolean }): Promise<void> {
  let s: Status;
  try {
    if (o.json) {
      // at thousands of peers the status is megabytes: parsing it only to write it out again costs more than the rest
      const r = await new LocalClient(o.socket).getText(`${LOCALAPI.status}?format=pretty`);
      const text = printableStatusText(r.text, r.headers);
      if (text !== null) return void process.stdout.write(`${text}\n`);
      try {
        s = JSON.parse(r.text) as Status;
      } catch {
        throw new ApiError('FAILURE', 'daemon answered 200 with non-JSON');
      }
    } else s = await new LocalClient(o.socket).get<Status>(LOCALAPI.status);
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
