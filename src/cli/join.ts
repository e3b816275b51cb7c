// Join strings at the command line: `meshctl up --join` (or --join-file, or
// $MESHCTL_JOIN) reads one, `meshctl control authkey create --join` prints one
// (with a QR code on a terminal). The format itself is in netmap/join-string.ts.
//
// The string holds the auth key: it is a secret. It is never logged, never shown in
// an error, never put in status; the daemon only ever sees the key (inside the local
// API request, as with --auth-key) and the pin.
import { InvalidArgumentError } from 'commander';
import { cjsRequire, closeSync, openSync, readFileSync } from '../util/cjs.js';
import { terminalSafe } from '../util/text.js';
import { certPin } from '../crypto/spki-pin.js';
import { controlOrigin, encodeJoin, JoinStringError, MAX_JOIN_STRING_CHARS, MAX_JOIN_URLS, parseJoin, type JoinInfo } from '../netmap/join-string.js';
import { JOIN_ENV, knobText } from '../util/knobs.js';
import { CliError } from './errors.js';

export {
  controlOrigin,
  encodeJoin,
  JOIN_PREFIX,
  JoinStringError,
  MAX_JOIN_STRING_CHARS,
  MAX_JOIN_URLS,
  parseJoin,
  type JoinInfo,
} from '../netmap/join-string.js';

/** A join string file is one line of at most MAX_JOIN_STRING_CHARS; a longer file is not one, and is not read whole. */
const MAX_JOIN_FILE_BYTES = MAX_JOIN_STRING_CHARS + 64;
const { readSync } = cjsRequire('node:fs') as typeof import('node:fs');

function readJoinFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new CliError('USAGE', `--join-file: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const buf = Buffer.alloc(MAX_JOIN_FILE_BYTES + 1);
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
    if (n > MAX_JOIN_FILE_BYTES) throw new CliError('USAGE', `--join-file: ${path} is longer than ${MAX_JOIN_FILE_BYTES} bytes: it is not a join string file`);
    return buf.toString('utf8', 0, n);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError('USAGE', `--join-file: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * The join string from --join, else --join-file, else $MESHCTL_JOIN, parsed; undefined when none is given.
 * A bad one is a USAGE error naming where it came from and the defect, never its text.
 */
export function resolveJoin(flag: string | undefined, file: string | undefined, env: NodeJS.ProcessEnv = process.env): JoinInfo | undefined {
  if (flag !== undefined && file !== undefined) throw new CliError('USAGE', '--join and --join-file go alone: give one');
  const fromEnv = knobText(JOIN_ENV, env);
  const [text, source] =
    flag !== undefined ? [flag, '--join'] : file !== undefined ? [readJoinFile(file), `--join-file ${file}`] : fromEnv ? [fromEnv, JOIN_ENV] : [undefined, ''];
  if (text === undefined) return undefined;
  try {
    return parseJoin(text);
  } catch (err) {
    if (err instanceof JoinStringError) throw new CliError('USAGE', `${source}: ${err.message}`);
    throw err;
  }
}

/** `--control-url` (repeatable): each an https:// origin, at most MAX_JOIN_URLS. */
export function controlUrlArg(v: string, prev: string[] = []): string[] {
  const o = controlOrigin(v);
  if (typeof o !== 'string') throw new InvalidArgumentError(`"${terminalSafe(v, 80)}" is not https://HOST[:PORT]: ${o.problem}`);
  if (prev.length >= MAX_JOIN_URLS) throw new InvalidArgumentError(`at most ${MAX_JOIN_URLS} control URLs`);
  return prev.includes(o) ? prev : [...prev, o];
}

/**
 * The join string for a new auth key: the pin comes from the certificate the server serves (the state dir's
 * self-signed one unless `certFile` names the one given to `control serve --tls-cert`).
 */
export async function joinStringFor(authKey: string, urls: string[] | undefined, stateDir: string, certFile: string | undefined): Promise<string> {
  if (!urls?.length) throw new CliError('USAGE', '--join needs --control-url https://HOST:PORT (repeatable): the address nodes reach this control server at');
  const { stateFiles } = await import('../control/state-dir.js');
  const file = certFile ?? stateFiles(stateDir).cert;
  let pin: string;
  try {
    pin = certPin(readFileSync(file, 'utf8'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? 'no PEM certificate in it';
    const fix = certFile ? 'give the certificate `control serve --tls-cert` uses' : `start \`meshctl control serve --state-dir ${stateDir}\` once to create it`;
    throw new CliError('FAILURE', `--join: cannot read the server certificate ${file} (${why}): ${fix}`);
  }
  return encodeJoin({ urls, pin, authKey });
}

/** Prints a join string as the last line of stdout, after a QR code of it on a terminal; its pin goes to stderr. */
export async function printJoin(join: string): Promise<void> {
  process.stderr.write(`control server key: ${parseJoin(join).pin}\n`);
  process.stderr.write('the join string holds the auth key: pass it by file or environment (--join-file, $MESHCTL_JOIN), not on a command line\n');
  if (process.stdout.isTTY) {
    const qrcode = (await import('qrcode')).default;
    process.stdout.write(`${await qrcode.toString(join, { type: 'terminal', small: true, errorCorrectionLevel: 'L' })}\n`);
  }
  process.stdout.write(`${join}\n`);
}
