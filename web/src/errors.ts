/**
 * Error codes shared with the C++ core (`webquant::StatusCode`), plus the ones only the
 * TypeScript side raises (network and abort).
 */
export type WebQuantErrorCode =
  | 'invalid_argument'
  | 'non_finite'
  | 'shape_mismatch'
  | 'out_of_memory'
  | 'corrupt_data'
  | 'unsupported'
  | 'not_found'
  | 'network'
  | 'aborted'
  | 'disposed'
  | 'not_initialized';

const CODE_BY_NUMBER: WebQuantErrorCode[] = [
  'invalid_argument', // 0 is ok and never becomes an error; index 0 is unused
  'invalid_argument',
  'non_finite',
  'shape_mismatch',
  'out_of_memory',
  'corrupt_data',
  'unsupported',
  'not_found',
  'aborted',
];

/**
 * The one error type webquant throws. `code` says what kind of problem it is; `message` says what
 * was wrong in words a user can act on.
 */
export class WebQuantError extends Error {
  /** Machine-readable kind of the error. */
  readonly code: WebQuantErrorCode;

  constructor(code: WebQuantErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WebQuantError';
    this.code = code;
  }

  /** Builds the error for a non-zero status code returned by the C++ core. */
  static fromStatus(code: number, message: string): WebQuantError {
    return new WebQuantError(CODE_BY_NUMBER[code] ?? 'invalid_argument', message);
  }
}

/** @internal Throws `aborted` (with the signal's reason as cause) when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new WebQuantError('aborted', `${what} was aborted`, { cause: signal.reason });
}
