// Embind binding of quantization-aware distillation (cpp/include/webquant/distill.h):
//   distillModel(handle, options) -> {code, message, layers}
// options: the quantize options of js_quant.h (method 0 = rtn, 1 = hqq) plus
//   distill: {steps, batch, sequenceLength, samples, seed, learningRate, tokens (heap pointer to int32
//   ids), count}, progress(step, total, loss) (returning false stops the run: code "aborted").
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <string>
#include <vector>

#include "js_quant.h"
#include "model_handle.h"
#include "webquant/distill.h"

namespace webquant::bindings {
namespace {

using emscripten::val;

Status distill_run_from_js(const val& js, DistillRun* run) {
  if (js.isUndefined()) return Status::Ok();
  if (js.isNull() || js.isArray() || js.typeOf().as<std::string>() != "object") return invalid_js("options.distill must be an object");
  auto num = [&js](const char* key, double lo, double hi, double* out) -> Status {
    const val v = js[key];
    if (v.isUndefined()) return Status::Ok();
    const double d = v.isNumber() ? v.as<double>() : NAN;
    if (!(d >= lo && d <= hi)) return invalid_js(std::string("options.distill.") + key + " is out of range");
    *out = d;
    return Status::Ok();
  };
  double steps = run->steps, batch = run->batch, len = run->seq_len, samples = run->samples, seed = 1;
  double lr = run->optimizer.learning_rate, tokens = 0, count = 0;
  WQ_RETURN_IF_ERROR(num("steps", 1, 1e6, &steps));
  WQ_RETURN_IF_ERROR(num("batch", 1, 4096, &batch));
  WQ_RETURN_IF_ERROR(num("sequenceLength", 1, 1e6, &len));
  WQ_RETURN_IF_ERROR(num("samples", 1, 1e6, &samples));
  WQ_RETURN_IF_ERROR(num("seed", 0, 9007199254740991.0, &seed));
  WQ_RETURN_IF_ERROR(num("learningRate", 1e-12, 1.0, &lr));
  WQ_RETURN_IF_ERROR(num("tokens", 1, 4294967295.0, &tokens));
  WQ_RETURN_IF_ERROR(num("count", 0, 4294967295.0, &count));
  run->steps = static_cast<int>(steps);
  run->batch = static_cast<int>(batch);
  run->seq_len = static_cast<int>(len);
  run->samples = static_cast<int>(samples);
  run->seed = static_cast<uint64_t>(seed);
  run->optimizer.learning_rate = static_cast<float>(lr);
  if (tokens != 0) {
    run->tokens = reinterpret_cast<const int32_t*>(static_cast<uintptr_t>(tokens));
    run->count = static_cast<size_t>(count);
  }
  return Status::Ok();
}

val distill_model(ModelHandle& handle, val options) {
  Status s = handle.model() ? Status::Ok() : Status::Error(StatusCode::kInvalidArgument, "the model is not loaded");
  ModelQuantOptions mq;
  if (s.ok()) s = quant_options_from_js(options, &mq);
  if (s.ok()) {
    const val method = options["method"];
    const double m = method.isUndefined() ? 0 : method.isNumber() ? method.as<double>() : -1;
    if (m == 0 || m == 1) mq.method = static_cast<QuantMethod>(static_cast<int>(m));
    else s = invalid_js("distillation rounds with method rtn or hqq");
  }
  DistillRun run;
  if (s.ok()) s = distill_run_from_js(options["distill"], &run);
  std::vector<LayerQuantReport> report;
  if (s.ok()) {
    const val progress = options["progress"];
    s = quantize_distilled(handle.model(), mq, run, &report,
                           progress.isUndefined() ? DistillProgress() : [&progress](int step, int total, float loss) {
                             return !progress(step, total, loss).isFalse();
                           });
  }
  return quant_result_js(s, report);
}

}  // namespace

EMSCRIPTEN_BINDINGS(webquant_distill) {
  emscripten::function("distillModel", &distill_model);
}

}  // namespace webquant::bindings
