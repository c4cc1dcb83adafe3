/**
 * The error every CLI command throws for a bad command line (its own module, so the flag modules
 * can throw it without importing a command).
 * @packageDocumentation
 */

/** A bad command line: printed with the command's usage, exit code 1. */
export class CliUsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}
