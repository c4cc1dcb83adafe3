// EncoderModel (webquant/encoder_model.h): architecture dispatch, input checks and poolings; the
// graph itself lives in models/<arch>/.
#include "webquant/encoder_model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/bert/bert.h"
#include "models/config_fields.h"
#include "webquant/model_checkpoint.h"

namespace webquant {

const std::vector<std::string>& supported_encoder_types() {
  static const std::vector<std::string> types = {"bert"};
  return types;
}

namespace {

Status make_encoder(std::string_view config_json, std::unique_ptr<EncoderArchitecture>* out) {
  io::JsonValue root;
  WQ_RETURN_IF_ERROR(config::parse_object(config_json, &root));
  std::string type;
  WQ_RETURN_IF_ERROR(config::read_string(root, "model_type", &type));
  if (type.empty()) return config::bad("missing 'model_type'");
  if (type == "bert") return models::make_bert(root, out);
  std::string list;
  for (const std::string& t : supported_encoder_types()) list += (list.empty() ? "" : ", ") + t;
  return Status::Error(StatusCode::kUnsupported, "encoder model_type '" + type +
                                                     "' is not supported; supported: " + list +
                                                     " (quantizeCheckpoint quantizes the weights of any model type)");
}

Status invalid(const std::string& msg) { return Status::Error(StatusCode::kInvalidArgument, msg); }

}  // namespace

EncoderModel::~EncoderModel() = default;

Status EncoderModel::layout(std::string_view config_json, ModelLayout* out, EncoderInfo* info) {
  if (out == nullptr) return invalid("layout: out is null");
  std::unique_ptr<EncoderArchitecture> arch;
  WQ_RETURN_IF_ERROR(make_encoder(config_json, &arch));
  Weights w;
  VarBuilder vb(&w, nullptr);
  arch->build(vb);
  WQ_RETURN_IF_ERROR(vb.status());
  *out = w.layout();
  if (info != nullptr) *info = arch->info();
  return Status::Ok();
}

Status EncoderModel::load(std::string_view config_json, WeightSource& source, std::unique_ptr<EncoderModel>* out) {
  if (out == nullptr) return invalid("load: out is null");
  std::unique_ptr<EncoderArchitecture> arch;
  WQ_RETURN_IF_ERROR(make_encoder(config_json, &arch));
  std::unique_ptr<EncoderModel> m(new EncoderModel());
  VarBuilder vb(&m->weights_, &source);
  arch->build(vb);
  WQ_RETURN_IF_ERROR(vb.status());
  m->arch_ = std::move(arch);
  m->config_json_ = std::string(config_json);
  *out = std::move(m);
  return Status::Ok();
}

Status EncoderModel::load(std::string_view config_json, const std::vector<const io::SafetensorsFile*>& shards,
                          std::unique_ptr<EncoderModel>* out) {
  if (out == nullptr) return invalid("load: out is null");
  out->reset();
  ModelLayout layout;
  WQ_RETURN_IF_ERROR(EncoderModel::layout(config_json, &layout));
  std::unique_ptr<WeightSource> src;
  WQ_RETURN_IF_ERROR(checkpoint_source(config_json, layout, shards, &src));
  return load(config_json, *src, out);
}

Status EncoderModel::check(const EncoderBatch& b) const {
  const EncoderInfo& mi = info();
  if (b.batch == 0 || b.seq_len == 0 || b.input_ids == nullptr) return invalid("encoder: empty batch (no tokens)");
  if (b.seq_len > static_cast<size_t>(mi.max_position_embeddings)) {
    return invalid("encoder: sequence length " + std::to_string(b.seq_len) +
                   " is too long: max_position_embeddings is " + std::to_string(mi.max_position_embeddings));
  }
  for (size_t s = 0; s < b.batch; ++s) {
    size_t real = 0;
    for (size_t t = 0; t < b.seq_len; ++t) {
      const size_t i = s * b.seq_len + t;
      const std::string where = "sequence " + std::to_string(s) + " position " + std::to_string(t);
      if (b.input_ids[i] < 0 || b.input_ids[i] >= mi.vocab_size) {
        return invalid("encoder: " + where + " has token id " + std::to_string(b.input_ids[i]) +
                       ", outside the vocabulary [0, " + std::to_string(mi.vocab_size) + ")");
      }
      if (b.token_type_ids != nullptr && (b.token_type_ids[i] < 0 || b.token_type_ids[i] >= mi.type_vocab_size)) {
        return invalid("encoder: " + where + " has token type " + std::to_string(b.token_type_ids[i]) +
                       ", outside [0, " + std::to_string(mi.type_vocab_size) + ")");
      }
      if (b.attention_mask != nullptr && b.attention_mask[i] > 1) {
        return invalid("encoder: " + where + " has attention mask " + std::to_string(b.attention_mask[i]) +
                       " (must be 0 or 1)");
      }
      real += b.attention_mask == nullptr || b.attention_mask[i] != 0;
    }
    if (real == 0) return invalid("encoder: sequence " + std::to_string(s) + " is empty (its attention mask has no 1)");
  }
  return Status::Ok();
}

Status EncoderModel::forward(const EncoderBatch& batch, std::vector<float>* hidden) {
  if (hidden == nullptr) return invalid("forward: hidden is null");
  WQ_RETURN_IF_ERROR(check(batch));
  hidden->resize(batch.batch * batch.seq_len * static_cast<size_t>(info().hidden_size));
  arch_->forward(weights_, batch, hidden->data());
  return Status::Ok();
}

Status EncoderModel::embed(const EncoderBatch& batch, Pooling pooling, bool normalize, std::vector<float>* out) {
  if (out == nullptr) return invalid("embed: out is null");
  if (pooling != Pooling::kMean && pooling != Pooling::kCls) return invalid("embed: unknown pooling");
  WQ_RETURN_IF_ERROR(forward(batch, &hidden_));
  const size_t H = static_cast<size_t>(info().hidden_size), S = batch.seq_len;
  out->assign(batch.batch * H, 0.0f);
  std::vector<double> acc(H);
  for (size_t b = 0; b < batch.batch; ++b) {
    float* o = &(*out)[b * H];
    const float* rows = &hidden_[b * S * H];
    if (pooling == Pooling::kCls) {
      std::copy(rows, rows + H, o);
    } else {
      // sentence-transformers: sum(token_embeddings * mask) / clamp(sum(mask), min=1e-9).
      std::fill(acc.begin(), acc.end(), 0.0);
      size_t count = 0;
      for (size_t t = 0; t < S; ++t) {
        if (batch.attention_mask != nullptr && batch.attention_mask[b * S + t] == 0) continue;
        ++count;
        for (size_t j = 0; j < H; ++j) acc[j] += rows[t * H + j];
      }
      for (size_t j = 0; j < H; ++j) o[j] = static_cast<float>(acc[j] / static_cast<double>(count));
    }
    if (normalize) {
      double ss = 0.0;
      for (size_t j = 0; j < H; ++j) ss += static_cast<double>(o[j]) * o[j];
      const double inv = 1.0 / std::max(std::sqrt(ss), 1e-12);
      for (size_t j = 0; j < H; ++j) o[j] = static_cast<float>(o[j] * inv);
    }
  }
  return Status::Ok();
}

Status EncoderModel::mlm_logits(const EncoderBatch& batch, const int32_t* rows, size_t n_rows,
                                std::vector<float>* logits) {
  if (logits == nullptr) return invalid("mlm_logits: logits is null");
  if (!info().has_mlm_head) {
    return Status::Error(StatusCode::kUnsupported,
                         "this model has no masked-LM head (config.json architectures does not name "
                         "BertForMaskedLM): fill-mask needs one");
  }
  if (rows == nullptr || n_rows == 0) return invalid("mlm_logits: no rows asked for");
  const size_t total = batch.batch * batch.seq_len;
  for (size_t i = 0; i < n_rows; ++i) {
    if (rows[i] < 0 || static_cast<size_t>(rows[i]) >= total) {
      return invalid("mlm_logits: row " + std::to_string(rows[i]) + " is outside the batch's " +
                     std::to_string(total) + " rows");
    }
  }
  WQ_RETURN_IF_ERROR(forward(batch, &hidden_));
  const size_t H = static_cast<size_t>(info().hidden_size);
  std::vector<float> picked(n_rows * H);
  for (size_t i = 0; i < n_rows; ++i) {
    std::copy_n(&hidden_[static_cast<size_t>(rows[i]) * H], H, &picked[i * H]);
  }
  logits->resize(n_rows * static_cast<size_t>(info().vocab_size));
  arch_->mlm_logits(weights_, picked.data(), n_rows, logits->data());
  return Status::Ok();
}

}  // namespace webquant
