// The stories260K greedy oracle the Llama tests share (test_llama_config.cpp, test_llama_decode.cpp,
// test_llama_quant.cpp): the prompt and its README continuation, the tokenizer's decoder, greedy
// decoding, and the oracle prompt followed by the fp32 model's own greedy continuation.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "io/json.h"
#include "stories_checkpoint.h"
#include "webquant/causal_lm.h"

namespace webquant::testing {

inline const std::vector<int32_t> kPrompt = {1, 410, 469, 347};  // <s> "Zoo"
// hub/README.md: greedy decoding of the prompt for 57 new tokens.
inline const char* const kOracle =
    "Zoo was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
    "big, red ball. She wanted to play with it, but she didn't want to play with";

// tokenizer.json's vocabulary: id -> piece, read once.
inline const std::vector<std::string>& stories_vocab() {
  static const std::vector<std::string>* vocab = [] {
    auto* out = new std::vector<std::string>();
    io::JsonValue tok;
    Status t = io::parse_json(stories().tokenizer_text, &tok);
    REQUIRE_MESSAGE(t.ok(), t.message);
    const io::JsonValue* model = tok.get("model");
    REQUIRE(model != nullptr);
    const io::JsonValue* v = model->get("vocab");
    REQUIRE(v != nullptr);
    REQUIRE(v->is_object());
    out->resize(v->object.size());
    for (const auto& kv : v->object) {
      const size_t id = static_cast<size_t>(kv.second.number);
      REQUIRE(id < out->size());
      (*out)[id] = kv.first;
    }
    return out;
  }();
  return *vocab;
}

// tokenizer.json's decoder: skip special tokens, "▁" -> " ", <0xNN> -> byte, strip one leading space.
inline std::string decode(const std::vector<int32_t>& ids) {
  const std::vector<std::string>& vocab = stories_vocab();
  std::string out;
  for (int32_t id : ids) {
    if (id <= 2) continue;  // <unk>, <s>, </s>
    const std::string& piece = vocab.at(static_cast<size_t>(id));
    if (piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>') {
      out.push_back(static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
      continue;
    }
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, 3, "\xe2\x96\x81") == 0) {
        out.push_back(' ');
        i += 3;
      } else {
        out.push_back(piece[i++]);
      }
    }
  }
  if (!out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

// n_new greedy tokens after `prompt`, continuing m's cache.
inline std::vector<int32_t> greedy(CausalLM& m, const std::vector<int32_t>& prompt, int n_new) {
  std::vector<float> logits;
  REQUIRE(m.forward(prompt.data(), prompt.size(), false, &logits).ok());
  std::vector<int32_t> out;
  for (int t = 0; t < n_new; ++t) {
    int32_t tok = argmax(logits.data(), logits.size());
    out.push_back(tok);
    if (t + 1 < n_new) REQUIRE(m.forward(&tok, 1, false, &logits).ok());
  }
  return out;
}

// The oracle prompt followed by the fp32 model's own greedy continuation: `total` tokens.
inline const std::vector<int32_t>& oracle_sequence(size_t total) {
  static std::map<size_t, std::vector<int32_t>> cache;
  auto it = cache.find(total);
  if (it != cache.end()) return it->second;
  auto m = load_stories();
  std::vector<int32_t> seq = kPrompt;
  auto gen = greedy(*m, kPrompt, static_cast<int>(total - kPrompt.size()));
  seq.insert(seq.end(), gen.begin(), gen.end());
  return cache[total] = seq;
}

}  // namespace webquant::testing
