// Quantization-aware distillation of a Llama-family causal LM (llama, mistral, qwen2): the
// quantized model (the student) is trained to match the float model it came from (the teacher).
//
// The student keeps float32 master copies of every linear weight that `quant` quantizes and of the
// RMSNorm weights. Each step runs the student with fake-quantized weights, W' = dequantize(
// make_linear_quantized(W, spec)) — the very layer Weights::quantize would build from W, so the
// model finish() quantizes computes exactly what was trained — and takes the gradient through the
// rounding with the straight-through estimator (dL/dW = dL/dW'; qat.h): the RTN / HQQ parameters are
// recomputed from the current weights every step, and a min-max range clips nothing, so no element
// is masked. The loss is the KL divergence KL(teacher || student) of the next-token distributions,
// averaged over every position of the batch; the teacher's log-probabilities come from the model's
// own float forward pass. Adam (Kingma & Ba 2015) updates the master weights.
//
// Frozen: the token embedding, the output head (tied or not; it must be excluded from `quant`, as
// by default) and biases. Float32 models only. Memory: the activations of one batch
// (about (8 H + 4 I + 2 Q + 2 KV) floats per token per layer plus heads x T^2 attention weights per
// sequence per layer), the teacher's and student's log-probabilities [batch x seq_len, vocab] and
// three float copies (weight, Adam moments) of every trained parameter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "webquant/causal_lm.h"
#include "webquant/module.h"
#include "webquant/status.h"

namespace webquant {

struct DistillOptions {
  float learning_rate = 5e-4f;  // Adam step size (the peak, with a schedule)
  // > 0: the step size follows a cosine from learning_rate at step 1 to 0 at step total_steps
  // (steps after it use 0); 0: constant. Quantization-aware training is noisy at a constant rate:
  // weights near a rounding boundary flip back and forth; the decay lets them settle.
  int total_steps = 0;
  float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;
  bool train_norms = true;  // also train the RMSNorm weights (they stay float in the result)
};

class QuantDistiller {
 public:
  // `model` must outlive the distiller and stay float until finish(). Errors: kUnsupported (not a
  // llama / mistral / qwen2 model, a model not in float32, a quantized layer, a quantized embedding,
  // the head or an embedding table quantized by `quant`, a method other than RTN / HQQ, pruning,
  // an int8-activation scheme),
  // kInvalidArgument (a learning rate or Adam constant out of range, a spec make_linear_quantized
  // refuses, naming the layer), kNonFinite (a weight that is NaN / Inf).
  static Status create(CausalLM* model, const ModelQuantOptions& quant, const DistillOptions& options,
                       std::unique_ptr<QuantDistiller>* out);
  ~QuantDistiller();

  // One Adam step on `batch` sequences of `seq_len` tokens (row-major [batch, seq_len]); *loss (may
  // be null) receives the KL divergence (nats per position) of the student before the step.
  // Errors: kInvalidArgument (batch or seq_len 0, seq_len > max_context, a token outside the
  // vocabulary, a mistral model whose sliding window is shorter than seq_len), kNonFinite (the loss
  // or a gradient became NaN / Inf: the step is not applied). The model's KV cache is reset.
  Status step(const int32_t* tokens, size_t batch, size_t seq_len, float* loss);

  // The loss and the gradients of the trained parameters, without changing anything (tests):
  // grads in the order of trained_names(), each [out, in] or [H] row-major.
  Status loss_and_gradients(const int32_t* tokens, size_t batch, size_t seq_len, float* loss,
                            std::vector<std::vector<float>>* grads);
  // The loss of the fake-quantized student alone (no teacher pass of its own cached: computed).
  Status evaluate(const int32_t* tokens, size_t batch, size_t seq_len, float* loss);
  // Names of the trained parameters: linear weights ("<layer>.weight") then norm weights.
  std::vector<std::string> trained_names() const;
  int steps() const;

  // Writes the trained weights into the model and quantizes it with `quant` (Weights::quantize):
  // the result runs the fake-quantized student's forward pass. The distiller is spent afterwards
  // (kInvalidArgument from any further call).
  Status finish(std::vector<LayerQuantReport>* report);

  struct Impl;

 private:
  explicit QuantDistiller(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A whole distillation run, what quantizeModel-style callers use: training sequences, `steps` Adam
// steps over batches of `batch` of them (in turn, cycling), then finish().
struct DistillRun {
  DistillOptions optimizer;  // total_steps 0 here means `steps` (a cosine over the run)
  int steps = 200;
  int batch = 8;
  int seq_len = 48;
  // Training text: when `tokens` is given, its `count` ids cut into sequences of seq_len (the last
  // partial one dropped; at least one needed). Otherwise data-free (LLM-QAT, Liu et al. 2023): the
  // float model samples `samples` sequences of seq_len tokens itself (temperature 1, seeds seed,
  // seed + 1, ...), each from BOS, a new BOS following an EOS.
  const int32_t* tokens = nullptr;
  size_t count = 0;
  int samples = 256;
  uint64_t seed = 1;
};
// Called after each step with (step, steps, training loss); returning false stops the run
// (kAborted, the model left float).
using DistillProgress = std::function<bool(int, int, float)>;

// Quantizes `model` with `quant` after distilling the quantized student (QuantDistiller). Errors:
// create()'s and step()'s, kInvalidArgument (steps, batch, seq_len or samples < 1, too few tokens
// for one sequence, data-free sampling on a model without bos_token_id), kAborted. On an error the
// model is left float as it was.
Status quantize_distilled(CausalLM* model, const ModelQuantOptions& quant, const DistillRun& run,
                          std::vector<LayerQuantReport>* report, const DistillProgress& progress = {});

}  // namespace webquant
