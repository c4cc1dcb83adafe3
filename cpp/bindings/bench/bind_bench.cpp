// The kernel table (cpp/testing/kernel_table) for the benchmark scripts, as its own wasm module
// (webquant-bench-simd, Node): the harness stays out of the production .wasm the package ships.
// Used by scripts/bench-kernels.mjs and scripts/bench-q8g.mjs.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <string>

#include "kernel_table/table.h"
#include "kernels/simd.h"
#include "webquant/status.h"

namespace webquant {
namespace {

using emscripten::val;

struct JsBench {
  int code = 0;
  std::string message;
  double seconds = 0;  // per call
};

JsBench error(StatusCode code, std::string message) {
  JsBench r;
  r.code = static_cast<int>(code);
  r.message = std::move(message);
  return r;
}

// [{name, family, inputBytesPerElement}] for every entry of the kernel table.
val kernel_list() {
  val out = val::array();
  const auto& table = kernels::kernel_table();
  for (size_t i = 0; i < table.size(); ++i) {
    val k = val::object();
    k.set("name", std::string(table[i].name));
    k.set("family", std::string(table[i].family));
    k.set("inputBytesPerElement", table[i].input_bytes_per_element);
    out.set(i, k);
  }
  return out;
}

// variant: 0 scalar reference, 1 SIMD (the reference again in the baseline build).
JsBench bench_kernel(std::string name, int variant, size_t n, int iters) {
  const kernels::KernelCase* k = kernels::find_kernel(name);
  if (!k) return error(StatusCode::kNotFound, "no kernel named " + name);
  if (variant != 0 && variant != 1)
    return error(StatusCode::kInvalidArgument, "variant must be 0 or 1");
  if (n == 0 || iters < 1)
    return error(StatusCode::kInvalidArgument, "n and iters must be >= 1");
  JsBench r;
  r.seconds = k->bench(static_cast<kernels::Variant>(variant), n, iters);
  return r;
}

bool has_simd() { return WEBQUANT_SIMD != 0; }

}  // namespace
}  // namespace webquant

EMSCRIPTEN_BINDINGS(webquant_bench) {
  using namespace emscripten;
  using namespace webquant;
  value_object<JsBench>("WqBench")
      .field("code", &JsBench::code)
      .field("message", &JsBench::message)
      .field("seconds", &JsBench::seconds);
  function("kernelList", &kernel_list);
  function("benchKernel", &bench_kernel);
  function("hasSimd", &has_simd);
}
