/**
 * Giving the event loop a turn during long computations, so that abort signals, worker messages
 * and timers are handled between tokens.
 * @packageDocumentation
 */

type Resolve = () => void;

let channel: MessageChannel | undefined;
const waiting: Resolve[] = [];

/**
 * Resolves after one macrotask turn of the event loop. Uses `setImmediate` where it exists (Node)
 * and a `MessageChannel` otherwise (browsers, workers): unlike `setTimeout(0)` neither is clamped
 * to 4 ms when nested.
 */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown };
  if (typeof g.setImmediate === 'function') {
    return new Promise((resolve) => g.setImmediate!(resolve));
  }
  if (typeof MessageChannel === 'function') {
    if (!channel) {
      channel = new MessageChannel();
      channel.port1.onmessage = () => waiting.shift()?.();
    }
    return new Promise((resolve) => {
      waiting.push(resolve);
      channel!.port2.postMessage(0);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Milliseconds from a monotonic clock. */
export function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
