// Errors of the TUN layer, with stable codes the CLI maps to messages.

export type TunErrorCode = 'TUN_BAD_NAME' | 'TUN_OPEN_FAILED' | 'TUN_CONFIG_FAILED';

export class TunError extends Error {
  override readonly name = 'TunError';
  constructor(
    readonly code: TunErrorCode,
    message: string,
  ) {
    super(message);
  }
}
