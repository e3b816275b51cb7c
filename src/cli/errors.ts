// One error class with a stable code per failure the CLI reports; `main` maps
// codes to exit statuses so scripts can tell causes apart.

export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  NOT_IMPLEMENTED: 2,
  PERMISSION: 3,
} as const;

export type CliErrorCode = 'USAGE' | 'NOT_IMPLEMENTED' | 'PERMISSION' | 'FAILURE';

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(readonly code: CliErrorCode, message: string) {
    super(message);
  }
  get exitCode(): number {
    return EXIT[this.code];
  }
}

export function notImplemented(command: string, issue: number): never {
  throw new CliError('NOT_IMPLEMENTED', `meshctl ${command}: not implemented yet (tracked in issue ${issue})`);
}
