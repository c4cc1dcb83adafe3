/**
 * Lifetime of objects that own C++ memory: they are freed by `dispose()` / `[Symbol.dispose]`
 * (so `using` works). A FinalizationRegistry only warns when one is garbage-collected undisposed;
 * it never frees (finalizers may run late or never).
 * @packageDocumentation
 */

// Engines without explicit resource management still get a working `[Symbol.dispose]` method
// under the well-known registered symbol that TypeScript's downlevel `using` looks up.
if (typeof (Symbol as { dispose?: symbol }).dispose !== 'symbol') {
  Object.defineProperty(Symbol, 'dispose', { value: Symbol.for('Symbol.dispose') });
}

const leaks =
  typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry<string>((what) => {
        console.warn(
          `webquant: a ${what} was garbage-collected without dispose(); its WebAssembly memory ` +
            'leaked. Call dispose() (or declare it with `using`) when done with it.',
        );
      })
    : undefined;

/** Arms the leak warning for `owner` (a `what`); `token` unregisters it. */
export function watchForLeak(owner: object, what: string, token: object): void {
  leaks?.register(owner, what, token);
}

/** Disarms the leak warning registered with `token`. */
export function unwatch(token: object): void {
  leaks?.unregister(token);
}
