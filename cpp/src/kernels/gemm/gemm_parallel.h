// Multi-threaded drivers of the GEMM kernels (gemm.h), on the pool of webquant/threads.h.
//
// The output rows are cut into runs of whole panels (kGemmNr rows), one run per thread, and each
// run is ONE call of the single-thread kernel on a sub-geometry (the panel layouts are panel-local:
// weights, scales and zero codes of panel p start at p * panel size). Every kernel computes a panel
// the same way whichever run it is in and whatever m is, so the output is bit-identical for every
// thread count; a run boundary never splits the n % 4 tail (it ends the last run). Activation rows
// (tokens) are not split: the kernels pair tokens and switch to the dequantized-panel path at
// m >= 3, so splitting m could change how an element is summed. With m > 1 a run writes its
// [m, rows] block to scratch and the caller's thread of the run copies it into y (row stride n).
//
// Workspace and scratch are allocated by the calling thread before the work is handed out (wasm
// workers must not grow the heap), in per-thread buffers that are reused across calls.
// Problems smaller than kParallelMinMacs multiply-adds run inline in one kernel call.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace webquant::kernels {

constexpr size_t kParallelMinMacs = 32768;

using GemmF32F32Fn = void (*)(size_t m, size_t n, size_t k, const float* x, const float* w,
                              const float* bias, float* y);
using GemmHalfF32Fn = void (*)(size_t m, size_t n, size_t k, const float* x, const uint16_t* w,
                               const float* bias, float* y, float* work);
using GemmQ8cF32Fn = void (*)(size_t m, const GroupGeometry& geo, const float* x,
                              const uint8_t* w, const float* scale, const float* bias, float* y,
                              float* work);
using GemmQgF32Fn = void (*)(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                             const float* scale, const uint8_t* zero, const float* bias, float* y,
                             float* work);
using GemmQ8cS8Fn = void (*)(size_t m, const GroupGeometry& geo, const int8_t* xq,
                             const float* xscale, const int32_t* xsum, const uint8_t* w,
                             const float* scale, const float* bias, float* y);
using GemmQ4gS8Fn = void (*)(size_t m, const GroupGeometry& geo, const int8_t* xq,
                             const float* xscale, const int32_t* xsum, const uint8_t* w,
                             const float* scale, const uint8_t* zero, const float* bias,
                             float* y);

using GemmQ4gX16Fn = void (*)(const GroupGeometry& geo, const float* xp, const uint8_t* w,
                              const float* scale, const uint8_t* zero, const float* bias,
                              float* y);

// Same arguments as the kernel passed in `kernel`, minus the workspace (the float-activation
// drivers size and own it). `bits` of the grouped driver is 4 or 2 (the layout of `w`).
void parallel_gemm_f32_f32(GemmF32F32Fn kernel, size_t m, size_t n, size_t k, const float* x,
                           const float* w, const float* bias, float* y);
void parallel_gemm_half_f32(GemmHalfF32Fn kernel, size_t m, size_t n, size_t k, const float* x,
                            const uint16_t* w, const float* bias, float* y);
void parallel_gemm_q8c_f32(GemmQ8cF32Fn kernel, size_t m, const GroupGeometry& geo,
                           const float* x, const uint8_t* w, const float* scale,
                           const float* bias, float* y);
void parallel_gemm_qg_f32(GemmQgF32Fn kernel, int bits, size_t m, const GroupGeometry& geo,
                          const float* x, const uint8_t* w, const float* scale,
                          const uint8_t* zero, const float* bias, float* y);
void parallel_gemm_q8c_s8(GemmQ8cS8Fn kernel, size_t m, const GroupGeometry& geo,
                          const int8_t* xq, const float* xscale, const int32_t* xsum,
                          const uint8_t* w, const float* scale, const float* bias, float* y);
void parallel_gemm_q4g_s8(GemmQ4gS8Fn kernel, size_t m, const GroupGeometry& geo,
                          const int8_t* xq, const float* xscale, const int32_t* xsum,
                          const uint8_t* w, const float* scale, const uint8_t* zero,
                          const float* bias, float* y);
// One row prepared by x16_prepare_q4g (the w4a16 model decode, gemm.h) against q4g weights.
void parallel_gemm_q4g_x16(GemmQ4gX16Fn kernel, const GroupGeometry& geo, const float* xp,
                           const uint8_t* w, const float* scale, const uint8_t* zero,
                           const float* bias, float* y);

// int8 per group (gemm_q8g.h): the q8g layouts are panel-local like the others (a panel of 4 rows
// holds 4 * kpad code bytes; scales and zero codes are in qg_param_index order), same signatures
// as the 4-bit drivers.
void parallel_gemm_q8g_f32(GemmQgF32Fn kernel, size_t m, const GroupGeometry& geo,
                           const float* x, const uint8_t* w, const float* scale,
                           const uint8_t* zero, const float* bias, float* y);
void parallel_gemm_q8g_s8(GemmQ4gS8Fn kernel, size_t m, const GroupGeometry& geo,
                          const int8_t* xq, const float* xscale, const int32_t* xsum,
                          const uint8_t* w, const float* scale, const uint8_t* zero,
                          const float* bias, float* y);
// One row prepared by x16_prepare_q8g (the w8a16 model decode, gemm_q8g.h) against q8g (or q8c)
// weights; same signature as the 4-bit x16 driver.
void parallel_gemm_q8g_x16(GemmQ4gX16Fn kernel, const GroupGeometry& geo, const float* xp,
                           const uint8_t* w, const float* scale, const uint8_t* zero,
                           const float* bias, float* y);
// One row prepared by x16_prepare_q4g (bits 4) or x16_prepare_q8g (bits 8) against symmetric q4g /
// q8g weights plus float offsets per row and group (gemm_q4g_x16_offset / gemm_q8g_x16_offset),
// offset row-major [n, groups].
using GemmX16OffsetFn = void (*)(const GroupGeometry& geo, const float* xp, const uint8_t* w,
                                 const float* scale, const float* offset, const float* bias,
                                 float* y);
void parallel_gemm_x16_offset(GemmX16OffsetFn kernel, int bits, const GroupGeometry& geo,
                              const float* xp, const uint8_t* w, const float* scale,
                              const float* offset, const float* bias, float* y);

}  // namespace webquant::kernels
