/**
 * TypeScript view of the Emscripten module built from `cpp/bindings/bind_core.cpp`.
 * Every fallible binding returns a {@link WasmStatus}-shaped object instead of throwing;
 * pointers are byte offsets into the wasm heap.
 * @packageDocumentation
 */

/** A byte offset into the wasm heap (C++ `uintptr_t`). */
export type WasmPointer = number;

/** Status returned by every fallible binding: `code` 0 means success. */
export interface WasmStatus {
  /** `webquant::StatusCode` as an integer (0 = ok). */
  code: number;
  /** Human-readable description of what went wrong ("" on success). */
  message: string;
}

/** A buffer malloc'ed by the binding; the caller copies it out and frees `ptr` with `_free`. */
export interface WasmBuffer extends WasmStatus {
  /** Heap offset of the first byte (0 on error). */
  ptr: WasmPointer;
  /** Number of bytes at `ptr`. */
  byteLength: number;
}

/** Result of `computeScaleZeroPoint`. */
export interface WasmScaleZeroPoint extends WasmStatus {
  scale: number;
  zeroPoint: number;
}

/** Result of `errorMetrics` and `QuantizedTensorHandle.errorAgainst`. */
export interface WasmErrorMetrics extends WasmStatus {
  mse: number;
  maxAbs: number;
  sqnrDb: number;
}

/** Result of `dtypeInfo`. */
export interface WasmDTypeInfo extends WasmStatus {
  name: string;
  isFloat: boolean;
  isSigned: boolean;
  bits: number;
  min: number;
  max: number;
  eps: number;
  smallestNormal: number;
  tiny: number;
  resolution: number;
  smallestSubnormal: number;
}

/** The Embind class owning one `webquant::QuantizedTensor`. Must be `delete()`d. */
export interface QuantizedTensorHandle {
  /** mode: 0 symmetric, 1 asymmetric; granularity: 0 per-tensor, 1 per-channel, 2 per-group. */
  quantize(
    data: WasmPointer,
    numel: number,
    shape: number[],
    bits: number,
    signed: boolean,
    mode: number,
    granularity: number,
    axis: number,
    groupSize: number,
    pad: boolean,
  ): WasmStatus;
  /** Given parameters: `scales` / `zeroPoints` hold nParams float32 / int32 values. */
  quantizeWithParams(
    data: WasmPointer,
    numel: number,
    shape: number[],
    bits: number,
    signed: boolean,
    mode: number,
    granularity: number,
    axis: number,
    groupSize: number,
    pad: boolean,
    scales: WasmPointer,
    zeroPoints: WasmPointer,
    nParams: number,
  ): WasmStatus;
  /** Adopts numel int32 codes with given parameters (validated). */
  fromCodes(
    codes: WasmPointer,
    numel: number,
    shape: number[],
    bits: number,
    signed: boolean,
    mode: number,
    granularity: number,
    axis: number,
    groupSize: number,
    pad: boolean,
    scales: WasmPointer,
    zeroPoints: WasmPointer,
    nParams: number,
  ): WasmStatus;
  numel(): number;
  codesPtr(): WasmPointer;
  scalesLength(): number;
  scalesPtr(): WasmPointer;
  zeroPointsLength(): number;
  zeroPointsPtr(): WasmPointer;
  shape(): number[];
  paramShape(): number[];
  /** Writes numel() floats at `out`. */
  dequantizeInto(out: WasmPointer): void;
  /** `x`: the numel() floats this tensor was quantized from; writes numel() bytes (1 = the gradient passes) at `pass`. */
  passMaskInto(x: WasmPointer, pass: WasmPointer): WasmStatus;
  pack(): WasmBuffer;
  /** `reference` holds numel() floats. */
  errorAgainst(reference: WasmPointer): WasmErrorMetrics;
  /** Frees the C++ object. */
  delete(): void;
  isDeleted(): boolean;
}

/**
 * The Embind class owning one quantized linear layer (cpp/bindings/bind_linear.cpp). Pointers
 * stay valid until `delete()`. Must be `delete()`d.
 */
export interface LinearLayerHandle {
  /** scheme: LinearScheme id (1 w8a16, 2 w4a16, 3 w2a16, 4 w8a8, 5 w4a8); bias 0 = none. */
  create(w: WasmPointer, outFeatures: number, inFeatures: number, bias: WasmPointer, scheme: number, asymmetric: boolean, groupSize: number): WasmStatus;
  /** x: m*in floats; y: m*out floats. */
  forward(x: WasmPointer, m: number, y: WasmPointer): WasmStatus;
  dequantizeWeightInto(out: WasmPointer): void;
  bits(): number;
  groupSize(): number;
  outFeatures(): number;
  inFeatures(): number;
  asymmetric(): boolean;
  describe(): string;
  note(): string;
  weightBytes(): number;
  codesLength(): number;
  codesPtr(): WasmPointer;
  scalesLength(): number;
  scalesPtr(): WasmPointer;
  zeroPointsPtr(): WasmPointer;
  biasLength(): number;
  biasPtr(): WasmPointer;
  packedLength(): number;
  packedPtr(): WasmPointer;
  delete(): void;
  isDeleted(): boolean;
}

/** The instantiated Emscripten module (what `createWebQuantModule()` resolves to). */
export interface WebQuantModule {
  HEAPU8: Uint8Array;
  HEAP8: Int8Array;
  HEAPU16: Uint16Array;
  HEAP32: Int32Array;
  HEAPU32: Uint32Array;
  HEAPF32: Float32Array;
  _malloc(bytes: number): WasmPointer;
  _free(ptr: WasmPointer): void;

  QuantizedTensorHandle: new () => QuantizedTensorHandle;
  LinearLayerHandle: new () => LinearLayerHandle;
  computeScaleZeroPoint(
    data: WasmPointer,
    n: number,
    bits: number,
    signed: boolean,
    mode: number,
  ): WasmScaleZeroPoint;
  packCodes(codes: WasmPointer, n: number, bits: number): WasmBuffer;
  unpackCodes(packed: WasmPointer, packedLength: number, n: number, bits: number): WasmBuffer;
  convertFloat(src: WasmPointer, n: number, from: string, to: string): WasmBuffer;
  dtypeInfo(name: string): WasmDTypeInfo;
  errorMetrics(a: WasmPointer, aLength: number, b: WasmPointer, bLength: number): WasmErrorMetrics;
  heapUsedBytes(): number;
  memoryBytes(): number;
  hasSimd(): boolean;
  /** True in the pthreads build. */
  hasThreads(): boolean;
  /** Sets the thread count (the caller included); returns the count in effect. */
  setNumThreads(n: number): number;
  /** The thread count in effect (1 in the single-thread builds). */
  numThreads(): number;
  /** Turns the profiling of parallel regions on or off and clears it (webquant/threads.h). */
  setThreadProfiling(on: boolean): void;
  /**
   * Bytes per second read by streaming a buffer of `bytes` (64 B to 1 GiB; 0 outside) over the current
   * threads, best of `repeats` passes: the benchmarks' memory-bandwidth roofline (webquant/threads.h).
   */
  readBandwidth(bytes: number, repeats: number): number;
  /** The counters of the profiling of parallel regions (times in milliseconds). */
  threadProfile(): WasmThreadProfile;
  /** Fusion of linear layers sharing an input (q/k/v, gate/up) into one pool hand-off in decode; default on. */
  setFuseLinears(on: boolean): void;
  /**
   * Whether a pool thread claims its home range of chunks in runs, one call each (default on), or one
   * chunk per claim and call (off; the pool before 2026-12-03, for benchmarks). Same results either way.
   */
  setClaimRuns(on: boolean): void;
  /** Emscripten's pthreads bookkeeping (pthreads build only): the pool's workers. */
  PThread?: { unusedWorkers: PoolWorker[]; runningWorkers: PoolWorker[] };
}

/** One kind of parallel region in {@link WasmThreadProfile}: how many, and the wall time inside them. */
export interface WasmRegionStats {
  count: number;
  ms: number;
}

/**
 * Counters of the profiling of parallel regions (webquant/threads.h): regions timed on the calling
 * thread whether or not they were split; forks are hand-offs to the pool, with the parts' times.
 */
export interface WasmThreadProfile {
  enabled: boolean;
  regions: {
    gemm: WasmRegionStats;
    attention: WasmRegionStats;
    fusedLinear: WasmRegionStats;
    head: WasmRegionStats;
    elementwise: WasmRegionStats;
  };
  forks: number;
  forkMs: number;
  partMs: number;
  imbalanceMs: number;
}

/** A worker of the pthreads pool (a Web Worker, or a worker_threads Worker in Node). */
export interface PoolWorker {
  /** Node only: lets the process exit while the worker idles. */
  unref?: () => void;
}

/** Options understood by the Emscripten module factory. */
export interface ModuleFactoryOptions {
  wasmBinary?: ArrayBuffer | Uint8Array;
  locateFile?: (path: string, prefix: string) => string;
  print?: (text: string) => void;
  printErr?: (text: string) => void;
  /** pthreads build: the URL its workers import the glue from (the real, possibly hashed, URL). */
  mainScriptUrlOrBlob?: string;
  /** pthreads build: workers created at instantiation (threads beyond them cannot start). */
  wqPoolSize?: number;
}

/** The default export of `webquant-simd.mjs` / `webquant.mjs`. */
export type ModuleFactory = (options?: ModuleFactoryOptions) => Promise<WebQuantModule>;
