// The module layer every architecture is written in: a registry of a model's named parameters
// (float tensors and linear layers), the sources they are read from, and everything that works on
// a model without knowing its architecture (quantization by layer name, memory footprint, the
// tensors to save).
//
// Names are the Hugging Face state-dict names ("model.layers.3.mlp.down_proj" for a linear module,
// "model.norm.weight" for a float tensor). An architecture declares its weights through a
// VarBuilder scoped by name prefix (as candle's VarBuilder::pp), in the order of the HF module
// tree; that order is the order of save files, reports and footprints.
//
// Linear layers: y = x W^T + b with W [out_features, in_features] (linear.h). A checkpoint that
// stores a module as HF's Conv1D ([in, out], y = x W + b; GPT-2) is declared with conv1d = true and
// transposed once when read, so every Linear is [out, in] in memory. A linear module may be tied to
// a float parameter (an output head sharing the token embedding): until quantized it has no layer
// of its own and its forward reads that parameter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webquant/linear.h"
#include "webquant/prune.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant {

// What a float parameter is, for the memory footprint.
enum class ParamKind : int {
  kEmbedding = 0,  // token, position or token-type embedding tables
  kNorm = 1,       // LayerNorm / RMSNorm weights and biases
  kOther = 2,
};

struct ParamInfo {
  std::string name;            // full HF tensor name
  std::vector<int64_t> shape;
  ParamKind kind = ParamKind::kOther;
};

struct LinearInfo {
  std::string name;            // HF module name (tensors are name + ".weight" / ".bias")
  int out_features = 0;
  int in_features = 0;
  bool has_bias = false;
  bool conv1d = false;         // stored as HF Conv1D [in, out]
  std::string tied_to;         // float parameter this head shares, or "" (never tied)
  bool is_head = false;        // the output head (reported as lm_head in footprints)
};

// Every weight of a model, in declaration order (the HF module order).
struct ModelLayout {
  struct Entry {
    bool is_linear = false;
    size_t index = 0;          // into params or linears
  };
  std::vector<ParamInfo> params;
  std::vector<LinearInfo> linears;
  std::vector<Entry> order;
  // A prefix that checkpoints may leave out of every name (GPT-2's original file stores "wte.weight"
  // for "transformer.wte.weight", as transformers' base_model_prefix allows); "" when none.
  std::string optional_prefix;
};

// The names a tensor may be stored under: `name`, then `name` without layout.optional_prefix.
// Readers of checkpoints look tensors up through this.
std::vector<std::string> stored_names(const ModelLayout& layout, const std::string& name);

// Where a model's weights come from when it is built. Implementations: a float HF checkpoint
// (SafetensorsSource), webquant's quantized checkpoints (model_checkpoint.h), prepared parts
// (PartsSource, for streaming quantization).
class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The float parameter `info.name` with exactly `info.shape`, as float32. Errors: kNotFound,
  // kShapeMismatch, kUnsupported dtype, each naming the tensor.
  virtual Status tensor(const ParamInfo& info, std::vector<float>* out) = 0;
  // The linear module `info`. For a tied head the source may leave *out null (the head then reads
  // the tied parameter). Errors as tensor(), naming the module.
  virtual Status linear(const LinearInfo& info, std::unique_ptr<LinearLayer>* out) = 0;
  // Names may be stored without this prefix (see ModelLayout::optional_prefix).
  void set_optional_prefix(std::string prefix) { optional_prefix_ = std::move(prefix); }

 protected:
  std::string optional_prefix_;
};

// A float HF checkpoint in one or more safetensors shards (the first shard holding a name wins;
// unknown extra tensors are ignored). F32, F16 and BF16 tensors are converted to float32.
class SafetensorsSource final : public WeightSource {
 public:
  explicit SafetensorsSource(std::vector<const io::SafetensorsFile*> shards)
      : shards_(std::move(shards)) {}
  Status tensor(const ParamInfo& info, std::vector<float>* out) override;
  Status linear(const LinearInfo& info, std::unique_ptr<LinearLayer>* out) override;
  // The float32 weight [out, in] (transposed from Conv1D storage) and bias of a linear module.
  Status linear_weights(const LinearInfo& info, std::vector<float>* w, std::vector<float>* b);

 private:
  std::vector<const io::SafetensorsFile*> shards_;
};

// Weights prepared elsewhere, handed over by name (moved out when the model takes them).
class PartsSource final : public WeightSource {
 public:
  void add_tensor(std::string name, std::vector<float> data);
  // layer may be null for a tied head.
  void add_linear(std::string name, std::unique_ptr<LinearLayer> layer);
  Status tensor(const ParamInfo& info, std::vector<float>* out) override;
  Status linear(const LinearInfo& info, std::unique_ptr<LinearLayer>* out) override;

 private:
  std::vector<std::pair<std::string, std::vector<float>>> tensors_;
  std::vector<std::pair<std::string, std::unique_ptr<LinearLayer>>> linears_;
};

// ---------------------------------------------------------------------------------------------
// Quantization by layer name (the one place that decides how each linear layer is quantized).

struct ModelQuantOptions {
  LinearQuantSpec default_spec;
  // Name patterns: an exact module name or a glob where '*' matches any run of characters
  // ("*.mlp.down_proj", "model.layers.0.*"). Excluded layers are left untouched. The default
  // excludes the output head by its HF name in every architecture webquant runs.
  std::vector<std::string> exclude = {"lm_head", "embed_out"};
  // (pattern, spec); the first matching pattern wins over default_spec. A spec with scheme kF32
  // turns the layer back into float32 (from its current, possibly already quantized, weights).
  std::vector<std::pair<std::string, LinearQuantSpec>> overrides;
  // Magnitude pruning (webquant/prune.h) of every layer this call quantizes (not excluded, not
  // turned to f32), applied to its float weight before quantization. Errors name the layer.
  PruneSpec prune;
};

// True when `name` matches `pattern` ('*' = any run of characters, including none and dots).
bool module_name_matches(std::string_view pattern, std::string_view name);

// The spec ModelQuantOptions gives the layer `name`: false when an exclude pattern matches (spec
// untouched), else true with the first matching override or default_spec in *spec.
bool resolve_layer_spec(const ModelQuantOptions& options, std::string_view name,
                        LinearQuantSpec* spec);

// Per-layer line of a quantize() report.
struct LayerQuantReport {
  std::string name;        // "model.layers.0.self_attn.q_proj", "lm_head"
  int out_features = 0;
  int in_features = 0;
  bool quantized = false;  // false when excluded (the layer is left as it was)
  std::string scheme;      // LinearLayer::describe() of the layer after the call
  size_t bytes_before = 0;  // weights + scales + bias; 0 for a tied head without its own copy
  size_t bytes_after = 0;
  std::string note;        // fallback (e.g. group size does not divide), exclusion, tying
  // The scheme used, as data (after the call).
  LinearScheme scheme_id = LinearScheme::kF32;
  int bits = 32;           // 8, 4, 2 for quantized layers
  bool asymmetric = false;
  int group_size = 0;      // == in_features for per channel; 0 for f32
  std::string fallback;    // "172 % 32 != 0" when a per-group request fell back to per channel
  bool tied = false;       // an f32 head reading the embedding (no layer of its own)
  QuantMethod method = QuantMethod::kRtn;  // how the codes were chosen (rtn for f32 layers)
  Codebook codebook = Codebook::kNone;     // lut4a16 layers: the table kind
  size_t pruned = 0;       // weights set to 0 by ModelQuantOptions::prune in this call
  size_t zeros = 0;        // exact zeros of the dequantized weight after the call (counted only
                           // when ModelQuantOptions::prune is set; else 0)
};

// Fills the "after" fields of `r` (scheme, scheme fields, bytes_after, quantized, tied) from the
// layer now in place (nullptr for a tied head reading the embedding).
void report_layer_state(const LinearLayer* layer, LayerQuantReport* r);

struct ModuleBytes {
  std::string name;
  size_t bytes = 0;
};

// Like the course's compute_module_sizes / get_memory_footprint: bytes of parameters per module.
struct MemoryFootprint {
  std::vector<ModuleBytes> modules;  // in declaration order (linears and parameter modules)
  size_t embedding = 0;  // embedding tables (token, position, type)
  size_t linear = 0;     // all linear layers except the output head
  size_t norms = 0;
  size_t other = 0;      // float parameters that are none of the above
  size_t lm_head = 0;    // 0 when tied and not quantized (it shares the embedding)
  size_t total = 0;      // embedding + linear + norms + other + lm_head (the parameters)
  size_t kv_cache = 0;   // currently allocated KV-cache bytes (not part of total)
};

// A float32 parameter viewed in place (for saving).
struct FloatParamView {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // owned by the model; valid while it lives and is not changed
  size_t numel = 0;
  ParamKind kind = ParamKind::kOther;
};

// The registry of a model's weights: float parameters and linear layers by name.
class Weights {
 public:
  struct Param {
    ParamInfo info;
    std::vector<float> data;
  };
  struct Linear {
    LinearInfo info;
    std::unique_ptr<LinearLayer> layer;  // null only for a tied, unquantized head
    std::vector<float> bias;             // kept to rebuild the layer when quantizing
  };

  const ModelLayout& layout() const { return layout_; }
  size_t num_params() const { return params_.size(); }
  size_t num_linears() const { return linears_.size(); }
  const Param& param(size_t i) const { return params_[i]; }
  const Linear& linear_at(size_t i) const { return linears_[i]; }
  // The parameter `name` or nullptr.
  const Param* find_param(std::string_view name) const;

  // Replaces linear layers by name (see ModelQuantOptions). `report` (optional) receives one
  // entry per linear layer, in model order. Errors from make_linear_quantized are returned with
  // the layer name; layers handled before the error keep their new form.
  Status quantize(const ModelQuantOptions& options, std::vector<LayerQuantReport>* report);

  // kv_cache is left 0 (the model adds its own).
  MemoryFootprint memory_footprint() const;
  std::vector<FloatParamView> float_params() const;

  std::vector<std::string> linear_names() const;
  // nullptr for an unknown name and for a tied, unquantized head.
  const LinearLayer* linear(std::string_view name) const;
  const LinearInfo* linear_info(std::string_view name) const;
  // Swaps in a layer built elsewhere. Its shape must match (kShapeMismatch), the name must exist
  // (kNotFound); a null layer is allowed only for a tied head (back to sharing). Takes ownership.
  Status replace_linear(std::string_view name, std::unique_ptr<LinearLayer> layer);

  // y[m, out] = x[m, in] W^T (+ b) for linear i, reading the tied parameter when it has no layer.
  void forward_linear(size_t i, const float* x, size_t m, float* y) const;
  const float* param_data(size_t i) const { return params_[i].data.data(); }

 private:
  friend class VarBuilder;
  ModelLayout layout_;
  std::vector<Param> params_;
  std::vector<Linear> linears_;
};

// Declares a model's weights by scoped name, reading them from a source (or, with no source,
// only recording the layout). Errors are sticky: the first one is kept in status() and later
// calls return handle -1, so an architecture's build reads straight through and checks once.
class VarBuilder {
 public:
  // source == nullptr: layout only (no data is read or allocated).
  VarBuilder(Weights* weights, WeightSource* source);

  // A builder for the sub-scope `prefix` ("model" -> "model.<name>"); shares the status.
  VarBuilder pp(std::string_view name) const;
  VarBuilder pp(int index) const { return pp(std::to_string(index)); }
  std::string path(std::string_view name) const;

  // Float parameter prefix.name with `shape`; returns its index (or -1 after an error).
  int param(std::string_view name, std::vector<int64_t> shape, ParamKind kind);
  // Linear module prefix.name; tied_to is a full parameter name or "".
  int linear(std::string_view name, int out_features, int in_features, bool bias,
             bool conv1d = false, std::string_view tied_to = "", bool is_head = false);

  bool layout_only() const { return source_ == nullptr; }
  // Declares that checkpoints may store every name without `prefix` + "." (see ModelLayout).
  void set_optional_prefix(std::string_view prefix);
  const Status& status() const { return *status_; }
  // Records an error found by the architecture itself (e.g. a config check).
  void fail(Status s);

 private:
  VarBuilder(Weights* w, WeightSource* s, std::shared_ptr<Status> st, std::string prefix)
      : weights_(w), source_(s), status_(std::move(st)), prefix_(std::move(prefix)) {}
  Weights* weights_;
  WeightSource* source_;
  std::shared_ptr<Status> status_;
  std::string prefix_;
};

}  // namespace webquant
