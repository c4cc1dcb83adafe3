// Assertions on the package's typed errors (WebQuantError with a `code`), shared by the tests.
import assert from 'node:assert/strict';

function assertWebQuantError(caught: unknown, code: string, patterns: RegExp[], expected: string): Error {
  assert.ok(caught instanceof Error, `expected ${expected} with code ${code}`);
  const e = caught as Error & { code?: string };
  assert.equal(e.name, 'WebQuantError', `not a WebQuantError: ${e.stack}`);
  assert.equal(e.code, code, `code ${e.code}: ${e.message}`);
  for (const p of patterns) assert.match(e.message, p);
  return e;
}

/**
 * Asserts `promise` rejects (or `fn` throws, or returns a promise that rejects) with a
 * WebQuantError of `code` whose message matches every pattern.
 */
export async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: string, ...patterns: RegExp[]): Promise<Error> {
  let caught: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    caught = err;
  }
  return assertWebQuantError(caught, code, patterns, 'a rejection');
}

/** Asserts `fn` throws a WebQuantError of `code` whose message matches every pattern. */
export function throwsWith(fn: () => unknown, code: string, ...patterns: RegExp[]): Error {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  return assertWebQuantError(caught, code, patterns, 'an error');
}
