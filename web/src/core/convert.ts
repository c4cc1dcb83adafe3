/**
 * float32 <-> float16 / bfloat16 conversion, bit-identical to PyTorch's `.to(torch.float16)` and
 * `.to(torch.bfloat16)`: round to nearest, ties to even; signed zero and NaN kept; fp16 overflow
 * gives ±Infinity.
 * @packageDocumentation
 */
import { WebQuantError } from '../errors.js';
import { checkStatus, HeapScope, takeBuffer } from '../runtime/heap.js';
import { getBackend } from '../runtime/loader.js';
import { adoptTensor, Tensor, type FloatDType } from './tensor.js';

/** The 16-bit float types a tensor can be downcast to. */
export type HalfDType = 'float16' | 'bfloat16';

function checkTensor(tensor: unknown, fn: string): asserts tensor is Tensor<FloatDType> {
  if (!(tensor instanceof Tensor)) {
    throw new WebQuantError('invalid_argument', `${fn} expects a Tensor`);
  }
}

function convert(tensor: Tensor<FloatDType>, to: string): ArrayBuffer {
  const module = getBackend().module;
  const scope = new HeapScope(module);
  try {
    const src = scope.copyIn(tensor.data, 'tensor data');
    return takeBuffer(module, module.convertFloat(src, tensor.size, tensor.dtype, to));
  } finally {
    scope.free();
  }
}

/**
 * Rounds a float32 tensor to float16 or bfloat16.
 *
 * @param tensor - A float32 tensor.
 * @param dtype - `'float16'` or `'bfloat16'`.
 * @returns A new tensor of that dtype holding the bit patterns.
 * @throws WebQuantError `invalid_argument` if the tensor is not float32 or the dtype name is
 *   unknown; `unsupported` for a known dtype that is not a 16-bit float.
 */
export function downcast<D extends HalfDType>(tensor: Tensor<'float32'>, dtype: D): Tensor<D> {
  checkTensor(tensor, 'downcast');
  if (tensor.dtype !== 'float32') {
    throw new WebQuantError('invalid_argument', `downcast expects a float32 tensor (got ${tensor.dtype})`);
  }
  if (typeof dtype !== 'string') {
    throw new WebQuantError('invalid_argument', 'downcast: dtype must be a string such as "float16"');
  }
  // The core parses the name (aliases such as 'fp16' included): unknown names and non-float
  // targets come back as its error.
  const info = getBackend().module.dtypeInfo(dtype);
  checkStatus(info);
  const bits = new Uint16Array(convert(tensor, info.name));
  return adoptTensor(bits as Tensor<D>['data'], tensor.shape, info.name as D);
}

/**
 * Widens a float16 or bfloat16 tensor to float32 (exact). A float32 tensor gives a copy.
 *
 * @param tensor - The tensor to widen.
 * @returns A new float32 tensor.
 */
export function upcast(tensor: Tensor<FloatDType>): Tensor<'float32'> {
  checkTensor(tensor, 'upcast');
  if (tensor.dtype === 'float32') return new Tensor(tensor.data as Float32Array, tensor.shape);
  return adoptTensor(new Float32Array(convert(tensor, 'float32')), tensor.shape, 'float32');
}
