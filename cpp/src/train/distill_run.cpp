// quantize_distilled (webquant/distill.h): training sequences (given or sampled by the float
// model), the steps, finish().
#include <algorithm>
#include <string>
#include <vector>

#include "webquant/distill.h"
#include "webquant/sampling.h"

namespace webquant {
namespace {

// `samples` sequences of `len` tokens the model samples from BOS (a new BOS after an EOS).
Status sample_sequences(CausalLM* model, const DistillRun& run, std::vector<int32_t>* out) {
  const int bos = model->info().bos_token_id;
  if (bos < 0) return Status::Error(StatusCode::kInvalidArgument, "distill: the model has no bos_token_id to sample from; give training tokens");
  const size_t len = static_cast<size_t>(run.seq_len);
  for (int i = 0; i < run.samples; ++i) {
    std::vector<int32_t> seq;
    model->reset();
    SamplingOptions s;
    s.temperature = 1.0f;
    s.seed = run.seed + static_cast<uint64_t>(i);
    for (int part = 0; seq.size() < len; ++part) {
      const int32_t start = bos;
      seq.push_back(start);
      if (seq.size() == len) break;
      std::vector<int32_t> gen;
      s.seed = run.seed + static_cast<uint64_t>(i) + (static_cast<uint64_t>(part) << 32);
      WQ_RETURN_IF_ERROR(model->generate(&start, 1, static_cast<int>(len - seq.size()), s, &gen));
      seq.insert(seq.end(), gen.begin(), gen.end());
      if (gen.empty()) break;  // context full
    }
    seq.resize(len, bos);
    out->insert(out->end(), seq.begin(), seq.end());
  }
  model->reset();
  return Status::Ok();
}

}  // namespace

Status quantize_distilled(CausalLM* model, const ModelQuantOptions& quant, const DistillRun& run,
                          std::vector<LayerQuantReport>* report, const DistillProgress& progress) {
  if (model == nullptr) return Status::Error(StatusCode::kInvalidArgument, "distill: null model");
  if (run.steps < 1 || run.batch < 1 || run.seq_len < 1 || (run.tokens == nullptr && run.samples < 1))
    return Status::Error(StatusCode::kInvalidArgument, "distill: steps, batch, seq_len and samples must be >= 1");
  DistillOptions opt = run.optimizer;
  if (opt.total_steps == 0) opt.total_steps = run.steps;
  std::unique_ptr<QuantDistiller> d;
  WQ_RETURN_IF_ERROR(QuantDistiller::create(model, quant, opt, &d));
  const size_t len = static_cast<size_t>(run.seq_len);
  std::vector<int32_t> data;
  if (run.tokens != nullptr) {
    const size_t n = run.count / len;
    if (n == 0)
      return Status::Error(StatusCode::kInvalidArgument, "distill: " + std::to_string(run.count) +
                                                             " training tokens are fewer than one sequence of " + std::to_string(len));
    data.assign(run.tokens, run.tokens + n * len);
  } else {
    WQ_RETURN_IF_ERROR(sample_sequences(model, run, &data));
  }
  const size_t sequences = data.size() / len;
  const size_t batch = std::min(static_cast<size_t>(run.batch), sequences);
  size_t next = 0;
  std::vector<int32_t> tokens(batch * len);
  for (int step = 0; step < run.steps; ++step) {
    for (size_t b = 0; b < batch; ++b, next = (next + 1) % sequences)
      std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(next * len), len, tokens.begin() + static_cast<std::ptrdiff_t>(b * len));
    float loss = 0.0f;
    WQ_RETURN_IF_ERROR(d->step(tokens.data(), batch, len, &loss));
    if (progress && !progress(step + 1, run.steps, loss))
      return Status::Error(StatusCode::kAborted, "distill: stopped at step " + std::to_string(step + 1));
  }
  return d->finish(report);
}

}  // namespace webquant
