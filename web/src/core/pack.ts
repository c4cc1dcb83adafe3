/**
 * Packing low-bit unsigned codes into bytes, in the course convention: the bytes form one
 * little-endian bit stream, value i in bits [i*b, i*b + b). 4-bit: value 2k in the low nibble of
 * byte k; 2-bit: byte k holds values 4k..4k+3 at bit offsets 0, 2, 4, 6; 3-bit: 8 values in 3
 * bytes; 8-bit: one byte each. A length that does not fill the last unit is padded with zeros;
 * keep the length and pass it to {@link unpack}.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { HeapScope, takeBuffer } from '../runtime/heap.js';
import { getBackend } from '../runtime/loader.js';

function checkBits(bits: number): void {
  if (bits !== 2 && bits !== 3 && bits !== 4 && bits !== 8) {
    throw new WebQuantError('invalid_argument', `bits must be 2, 3, 4 or 8 (got ${String(bits)})`);
  }
}

function toBytes(codes: Uint8Array | readonly number[]): Uint8Array {
  if (codes instanceof Uint8Array) return codes;
  if (!Array.isArray(codes)) {
    throw new WebQuantError('invalid_argument', 'pack expects the unsigned codes as a Uint8Array or an array of numbers');
  }
  codes.forEach((c, i) => {
    if (!Number.isInteger(c) || c < 0 || c > 255) {
      throw new WebQuantError('invalid_argument', `code at index ${i} is not an unsigned byte (got ${String(c)})`);
    }
  });
  return Uint8Array.from(codes);
}

/**
 * Packs unsigned codes (each below 2^bits) into bytes.
 *
 * @example
 * ```ts
 * pack([1, 0, 3, 2], 2);  // Uint8Array [177]  (0b10_11_00_01)
 * ```
 * @param codes - Unsigned codes; for signed codes add -qmin first (`q + 2^(bits-1)`).
 * @param bits - 2, 3, 4 or 8.
 * @returns `ceil(n / valuesPerUnit) * bytesPerUnit` bytes.
 * @throws WebQuantError `invalid_argument` for bad bits or a code that does not fit in `bits`.
 */
export function pack(codes: Uint8Array | readonly number[], bits: number): Uint8Array {
  checkBits(bits);
  const bytes = toBytes(codes);
  const module = getBackend().module;
  const scope = new HeapScope(module);
  try {
    const ptr = scope.copyIn(bytes, 'codes');
    return new Uint8Array(takeBuffer(module, module.packCodes(ptr, bytes.length, bits)));
  } finally {
    scope.free();
  }
}

/**
 * Unpacks `length` codes packed by {@link pack}.
 *
 * @param packed - The packed bytes; their count must be exactly what `length` codes need.
 * @param bits - 2, 3, 4 or 8.
 * @param length - Number of codes to return.
 * @throws WebQuantError `invalid_argument` for bad bits or length; `shape_mismatch` when
 *   `packed.length` does not match `length`.
 */
export function unpack(packed: Uint8Array, bits: number, length: number): Uint8Array {
  checkBits(bits);
  if (!(packed instanceof Uint8Array)) {
    throw new WebQuantError('invalid_argument', 'unpack expects the packed bytes as a Uint8Array');
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new WebQuantError('invalid_argument', `length must be a non-negative integer (got ${String(length)})`);
  }
  const module = getBackend().module;
  const scope = new HeapScope(module);
  try {
    const ptr = scope.copyIn(packed, 'packed codes');
    return new Uint8Array(takeBuffer(module, module.unpackCodes(ptr, packed.length, length, bits)));
  } finally {
    scope.free();
  }
}
