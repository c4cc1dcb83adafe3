// Every kernel in the table, SIMD against its scalar reference, over the sweep of sizes and
// several seeds. In the native build the SIMD kernels run through SIMDe; in the wasm build they
// are real WASM SIMD128 (scripts/test.sh runs both).
#include <doctest/doctest.h>

#include "kernel_table/table.h"

using namespace webquant::kernels;

TEST_CASE("every kernel matches its reference on the size sweep") {
  REQUIRE(!kernel_table().empty());
  for (const KernelCase& k : kernel_table()) {
    for (size_t n : sweep_sizes()) {
      for (uint64_t seed : {1u, 2u, 3u}) {
        const std::string err = k.check(n, seed * 7919 + n);
        INFO(k.name, " n=", n, " seed=", seed);
        CHECK_MESSAGE(err.empty(), err);
      }
    }
  }
}

TEST_CASE("kernel table names are unique and findable") {
  for (const KernelCase& k : kernel_table()) {
    CHECK(find_kernel(k.name) == &k);
    CHECK(k.input_bytes_per_element > 0);
  }
  CHECK(find_kernel("no_such_kernel") == nullptr);
}
