// quantize_distilled (webquant/distill.h): training sequences (given or sampled by the float
// model), the steps, finish().
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/json.h"
#include "quant/checkpoint_format.h"
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

// x to 6 significant digits (a float's 5e-4 records as 0.0005, not 0.000500000023748725).
io::JsonValue short_num(float x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(x));
  return ckpt::jnum(std::strtod(buf, nullptr));
}

// What Weights::distillation_record keeps of a finished run (quantization_config "distillation").
std::string run_record(const DistillRun& run, const DistillOptions& opt, size_t sequences, size_t batch,
                       float first_loss, float last_loss) {
  using ckpt::jbool;
  using ckpt::jnum;
  using ckpt::jstr;
  io::JsonValue r = ckpt::jobj();
  ckpt::put(&r, "loss", jstr("kl(teacher||student)"));
  ckpt::put(&r, "steps", jnum(run.steps));
  ckpt::put(&r, "batch", jnum(static_cast<double>(batch)));
  ckpt::put(&r, "sequence_length", jnum(run.seq_len));
  ckpt::put(&r, "optimizer", jstr("adam"));
  ckpt::put(&r, "learning_rate", short_num(opt.learning_rate));
  ckpt::put(&r, "schedule", jstr(opt.total_steps > 0 ? "cosine" : "constant"));
  ckpt::put(&r, "norms_trained", jbool(opt.train_norms));
  ckpt::put(&r, "data", jstr(run.tokens != nullptr ? "text" : "self-generated"));
  ckpt::put(&r, "sequences", jnum(static_cast<double>(sequences)));
  if (run.tokens == nullptr) ckpt::put(&r, "seed", jnum(static_cast<double>(run.seed)));
  ckpt::put(&r, "first_loss", short_num(first_loss));
  ckpt::put(&r, "last_loss", short_num(last_loss));
  return io::write_json(r);
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
  float first_loss = 0.0f, last_loss = 0.0f;
  std::vector<int32_t> tokens(batch * len);
  for (int step = 0; step < run.steps; ++step) {
    for (size_t b = 0; b < batch; ++b, next = (next + 1) % sequences)
      std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(next * len), len, tokens.begin() + static_cast<std::ptrdiff_t>(b * len));
    float loss = 0.0f;
    WQ_RETURN_IF_ERROR(d->step(tokens.data(), batch, len, &loss));
    if (step == 0) first_loss = loss;
    last_loss = loss;
    if (progress && !progress(step + 1, run.steps, loss))
      return Status::Error(StatusCode::kAborted, "distill: stopped at step " + std::to_string(step + 1));
  }
  WQ_RETURN_IF_ERROR(d->finish(report));
  model->weights().set_distillation_record(run_record(run, opt, sequences, batch, first_loss, last_loss));
  return Status::Ok();
}

}  // namespace webquant
