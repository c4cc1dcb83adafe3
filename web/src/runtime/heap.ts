/**
 * Moving data across the JS/WASM boundary.
 *
 * Rules (house style): bulk data goes in with one `HEAPU8.set` into a `_malloc`ed buffer and comes
 * out with one copy; no `HEAP*` view is kept across a call that can allocate, because memory growth
 * detaches it — every helper here reads `module.HEAPU8` afresh.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import type { WasmBuffer, WasmPointer, WasmStatus, WebQuantModule } from './module.js';

/** Throws the WebQuantError for a non-zero status returned by the core. */
export function checkStatus(status: WasmStatus): void {
  if (status.code !== 0) throw WebQuantError.fromStatus(status.code, status.message);
}

/** `_malloc(bytes)` that throws `out_of_memory` instead of returning 0. */
export function allocOrThrow(module: WebQuantModule, bytes: number, what: string): WasmPointer {
  // malloc(0) may legally return 0; always ask for at least one byte.
  const ptr = module._malloc(Math.max(bytes, 1)) >>> 0;
  if (ptr === 0) {
    throw new WebQuantError('out_of_memory', `out of wasm memory allocating ${bytes} bytes for ${what}`);
  }
  return ptr;
}

/** Mallocs a buffer and copies `data` into it with one `HEAPU8.set`. The caller frees it. */
export function copyIn(module: WebQuantModule, data: ArrayBufferView, what: string): WasmPointer {
  const ptr = allocOrThrow(module, data.byteLength, what);
  module.HEAPU8.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), ptr);
  return ptr;
}

/**
 * Copies `byteLength` bytes at `ptr` into a fresh ArrayBuffer (the result owns its memory). Never a
 * slice of the heap's buffer: in the pthreads build that is a SharedArrayBuffer, which Blob,
 * TextDecoder and friends refuse.
 */
export function copyOut(module: WebQuantModule, ptr: WasmPointer, byteLength: number): ArrayBuffer {
  const out = new Uint8Array(byteLength);
  out.set(module.HEAPU8.subarray(ptr, ptr + byteLength));
  return out.buffer;
}

/**
 * Checks a buffer returned by a binding, copies its bytes out and frees it.
 * Throws the core's error if the status is not ok.
 */
export function takeBuffer(module: WebQuantModule, result: WasmBuffer): ArrayBuffer {
  checkStatus(result);
  const ptr = result.ptr >>> 0;
  try {
    return copyOut(module, ptr, result.byteLength);
  } finally {
    module._free(ptr);
  }
}

/**
 * Heap allocations that belong to one operation: everything allocated through the scope is freed
 * by `free()`, which callers run in a `finally`.
 */
export class HeapScope {
  readonly #module: WebQuantModule;
  readonly #ptrs: WasmPointer[] = [];

  constructor(module: WebQuantModule) {
    this.#module = module;
  }

  /** Mallocs `bytes` (freed with the scope). */
  alloc(bytes: number, what: string): WasmPointer {
    const ptr = allocOrThrow(this.#module, bytes, what);
    this.#ptrs.push(ptr);
    return ptr;
  }

  /** Mallocs and fills a copy of `data` (freed with the scope). */
  copyIn(data: ArrayBufferView, what: string): WasmPointer {
    const ptr = copyIn(this.#module, data, what);
    this.#ptrs.push(ptr);
    return ptr;
  }

  /** Frees every allocation of the scope. */
  free(): void {
    for (const ptr of this.#ptrs) this.#module._free(ptr);
    this.#ptrs.length = 0;
  }
}
