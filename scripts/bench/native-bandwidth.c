// Native machine check beside the in-page figures of docs/threads.md and docs/threads-history.md
// ("The int8-activation schemes and the memory system"): memory-read bandwidth with 1 and 2
// threads (AVX2 loads over 256 MB, 5 passes) and the throughput of independent integer SIMD
// multiply-adds (12 chains of SSE madd) with 1 and 2 threads, to tell a memory-bound limit from a
// shared-core one; and the read bandwidth of the two orders in which the pool's threads can take a
// decode GEMV's chunks (docs/threads-history.md, "Home ranges in the pool"): 256 MB read as 1,024
// matrices of 256 KB, each cut into 16 chunks, the threads taking every other chunk
// ("interleaved") or one contiguous half each ("home ranges"). Not part of the build:
//
//   gcc -O2 -mavx2 -pthread scripts/bench/native-bandwidth.c -o /tmp/native-bandwidth && /tmp/native-bandwidth
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N (256ul << 20)
static uint8_t* buf;
static int T;
static volatile uint64_t sink;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void* read_pass(void* a) {
  size_t id = (size_t)a, lo = N / T * id, hi = N / T * (id + 1);
  __m256i acc = _mm256_setzero_si256();
  for (int r = 0; r < 5; r++)
    for (size_t i = lo; i < hi; i += 128) {
      acc = _mm256_add_epi64(acc, _mm256_load_si256((__m256i*)(buf + i)));
      acc = _mm256_add_epi64(acc, _mm256_load_si256((__m256i*)(buf + i + 32)));
      acc = _mm256_add_epi64(acc, _mm256_load_si256((__m256i*)(buf + i + 64)));
      acc = _mm256_add_epi64(acc, _mm256_load_si256((__m256i*)(buf + i + 96)));
    }
  sink += (uint64_t)_mm256_extract_epi64(acc, 0);
  return 0;
}

#define MATRIX (256ul << 10)
#define CHUNKS 16
static int interleaved;

static void* chunk_pass(void* a) {
  size_t id = (size_t)a, cs = MATRIX / CHUNKS, per = CHUNKS / T;
  __m256i acc = _mm256_setzero_si256();
  for (int r = 0; r < 3; r++)
    for (size_t m = 0; m < N; m += MATRIX)
      for (size_t k = 0; k < per; k++) {
        const uint8_t* p = buf + m + cs * (interleaved ? id + k * T : id * per + k);
        for (size_t i = 0; i < cs; i += 64) {
          acc = _mm256_add_epi64(acc, _mm256_load_si256((__m256i*)(p + i)));
          acc = _mm256_add_epi64(acc, _mm256_load_si256((__m256i*)(p + i + 32)));
        }
      }
  sink += (uint64_t)_mm256_extract_epi64(acc, 0);
  return 0;
}

#define S(i) __m128i x##i = _mm_set1_epi16(i + 1);
#define U(i) x##i = _mm_add_epi32(_mm_madd_epi16(x##i, m), m);
static void* alu_pass(void* a) {
  (void)a;
  __m128i m = _mm_set1_epi16(3);
  S(0) S(1) S(2) S(3) S(4) S(5) S(6) S(7) S(8) S(9) S(10) S(11)
  for (long i = 0; i < 200000000L; i++) {
    U(0) U(1) U(2) U(3) U(4) U(5) U(6) U(7) U(8) U(9) U(10) U(11)
    __asm__ volatile("" ::"x"(x0), "x"(x5), "x"(x11));
  }
  __m128i s = _mm_add_epi32(_mm_add_epi32(_mm_add_epi32(x0, x1), _mm_add_epi32(x2, x3)),
                            _mm_add_epi32(_mm_add_epi32(x4, x5), _mm_add_epi32(x6, x7)));
  s = _mm_add_epi32(s, _mm_add_epi32(_mm_add_epi32(x8, x9), _mm_add_epi32(x10, x11)));
  sink += (uint64_t)_mm_cvtsi128_si32(s);
  return 0;
}

static double run(void* (*fn)(void*), int threads) {
  pthread_t th[2];
  T = threads;
  double t0 = now();
  for (int i = 0; i < T; i++) pthread_create(&th[i], 0, fn, (void*)(size_t)i);
  for (int i = 0; i < T; i++) pthread_join(th[i], 0);
  return now() - t0;
}

int main(void) {
  buf = aligned_alloc(64, N);
  memset(buf, 1, N);
  for (int t = 1; t <= 2; t++) printf("read, %d thread(s): %.1f GB/s\n", t, 5.0 * N / run(read_pass, t) / 1e9);
  const double one = run(alu_pass, 1);
  const double two = run(alu_pass, 2);
  printf("integer SIMD throughput, 2 threads vs 1: %.2fx\n", 2.0 * one / two);
  for (interleaved = 1; interleaved >= 0; interleaved--) {
    const double t1 = run(chunk_pass, 1), t2 = run(chunk_pass, 2);
    printf("chunks of 256 KB matrices, %s: 2 threads read %.2fx what 1 thread reads\n",
           interleaved ? "interleaved" : "home ranges", t1 / t2);
  }
  return 0;
}
