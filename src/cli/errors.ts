// One error class with a stable code per failure the CLI reports; `main` maps
// codes to exit statuses so scripts can tell causes apart (man/meshctl.1,
// EXIT STATUS).
import { ApiError, type ApiErrorCode } from '../localapi/types.js';
import { DaemonNotRunning } from '../localapi/client.js';
import { terminalSafe } from '../util/text.js';

export const EXIT = {
  OK: 0,
  /** any other failure, and "meshctl is stopped" (as the contract asks of status) */
  FAILURE: 1,
  USAGE: 2,
  PERMISSION: 3,
  NOT_FOUND: 4,
  UNREACHABLE: 5,
  AUTH: 6,
  TIMEOUT: 7,
  /** `dns query`: the resolver answered NXDOMAIN (no such name) */
  NXDOMAIN: 8,
  /** `dns query`: the resolver answered SERVFAIL (it could not get an answer, e.g. the upstream is unreachable) */
  SERVFAIL: 9,
} as const;

export type CliErrorCode = keyof typeof EXIT;

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly code: CliErrorCode,
    message: string,
  ) {
    super(message);
  }
  get exitCode(): number {
    return EXIT[this.code];
  }
}

/** Longest error message shown: one line, however long what the daemon sent. */
const MAX_ERROR_CHARS = 2048;

const FROM_API: Record<ApiErrorCode, CliErrorCode> = {
  BAD_REQUEST: 'USAGE',
  PERMISSION: 'PERMISSION',
  NOT_FOUND: 'NOT_FOUND',
  UNREACHABLE: 'UNREACHABLE',
  AUTH: 'AUTH',
  TIMEOUT: 'TIMEOUT',
  NOT_RUNNING: 'FAILURE',
  FAILURE: 'FAILURE',
};

/** Turns what the local API client throws into the CLI's one-line error. */
export function fromApi(err: unknown, socket: string): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof DaemonNotRunning) return new CliError('FAILURE', `meshctl is stopped (no daemon at ${socket}): start it with \`meshctl up\``);
  // the daemon's messages quote the control server and peers: no escape sequences reach the terminal
  if (err instanceof ApiError) return new CliError(FROM_API[err.code], terminalSafe(err.message, MAX_ERROR_CHARS));
  return new CliError('FAILURE', terminalSafe((err as Error)?.message ?? String(err), MAX_ERROR_CHARS));
}
