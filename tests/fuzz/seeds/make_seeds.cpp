// Writes small valid inputs for the fuzzers, one folder per target:
//   make_fuzz_seeds OUT_DIR [SHARED_DIR]
// OUT_DIR/fuzz_safetensors: multi-dtype files made by write_safetensors (and, when SHARED_DIR
//   holds stories260K, a file with its real header names at toy sizes);
// OUT_DIR/fuzz_json: JSON documents (and stories260K's config.json and header text);
// OUT_DIR/fuzz_gguf: a small GGUF v3 file.
// Generated rather than committed, so the repository holds no binary blobs.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "io/json.h"
#include "webquant/convert.h"
#include "webquant/gguf.h"
#include "webquant/safetensors.h"

using namespace webquant;
using namespace webquant::io;

namespace {

std::string g_out;

void write(const std::string& target, const std::string& name, const void* p, size_t n) {
  std::string dir = g_out + "/" + target;
  mkdir(g_out.c_str(), 0755);
  mkdir(dir.c_str(), 0755);
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.write(static_cast<const char*>(p), std::streamsize(n));
  if (!f) {
    std::fprintf(stderr, "make_fuzz_seeds: cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
}
void write(const std::string& target, const std::string& name, const std::vector<uint8_t>& b) {
  write(target, name, b.data(), b.size());
}
void write(const std::string& target, const std::string& name, const std::string& s) {
  write(target, name, s.data(), s.size());
}

bool read(const std::string& path, std::vector<uint8_t>* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

void check(const Status& st) {
  if (!st.ok()) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", st.message.c_str());
    std::exit(1);
  }
}

void safetensors_seeds(const std::string& shared) {
  const char* dtypes[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                          "BF16", "I32", "U32", "F32", "F64", "I64", "U64"};
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<TensorRecord> recs;
  for (const char* dt : dtypes) {
    size_t es = safetensors_dtype_size(dt);
    std::vector<uint8_t> p(3 * es);
    for (size_t i = 0; i < p.size(); ++i) p[i] = uint8_t(i * 37 + es);
    payloads.push_back(std::move(p));
  }
  // Meaningful floats for the converters.
  float f32[3] = {1.0f, -2.5f, 3.0e-5f};
  uint16_t f16[3] = {fp32_to_fp16(0.5f), fp32_to_fp16(-65504.0f), 0x7C00};
  uint16_t bf16[3] = {fp32_to_bf16(1.0f), fp32_to_bf16(-3.0e30f), 0x7FC0};
  for (size_t i = 0; i < std::size(dtypes); ++i) {
    std::string dt = dtypes[i];
    if (dt == "F32") std::memcpy(payloads[i].data(), f32, 12);
    if (dt == "F16") std::memcpy(payloads[i].data(), f16, 6);
    if (dt == "BF16") std::memcpy(payloads[i].data(), bf16, 6);
    recs.push_back({"layer." + dt + ".weight", dt, {3}, payloads[i].data(), payloads[i].size()});
  }
  std::vector<uint8_t> out;
  check(write_safetensors(recs, {{"format", "pt"}, {"note", "seed \"file\"\n\xc3\xa9"}}, &out));
  write("fuzz_safetensors", "all_dtypes.safetensors", out);

  // Shapes: a matrix, a scalar, an empty tensor; no metadata.
  std::vector<float> m(12);
  for (size_t i = 0; i < m.size(); ++i) m[i] = std::sin(float(i));
  const uint8_t* mp = reinterpret_cast<const uint8_t*>(m.data());
  check(write_safetensors({{"m", "F32", {3, 4}, mp, 48}, {"s", "F32", {}, mp, 4}, {"e", "BF16", {0, 5}, nullptr, 0}},
                          {}, &out));
  write("fuzz_safetensors", "shapes.safetensors", out);
  check(write_safetensors({}, {}, &out));
  write("fuzz_safetensors", "empty.safetensors", out);

  // Odd header length (data misaligned), a gap and leftover bytes: hand-made.
  std::string h = R"({"a":{"dtype":"F16","shape":[2,2],"data_offsets":[2,10]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[10,12]}})";
  if (h.size() % 2 == 0) h += ' ';
  std::vector<uint8_t> b(8);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) b[i] = uint8_t(n >> (8 * i));
  b.insert(b.end(), h.begin(), h.end());
  for (int i = 0; i < 16; ++i) b.push_back(uint8_t(0x3C ^ i));
  write("fuzz_safetensors", "odd_gap.safetensors", b);

  // stories260K's header (real names, dtypes, nesting) with every tensor cut to 2 elements.
  std::vector<uint8_t> real;
  if (read(shared + "/hub/karpathy/stories260K/model.safetensors", &real)) {
    SafetensorsFile f;
    check(parse_safetensors(real.data(), real.size(), &f));
    std::vector<TensorRecord> small;
    for (const auto& t : f.tensors) small.push_back({t.name, t.dtype, {2}, t.data, 2 * safetensors_dtype_size(t.dtype)});
    check(write_safetensors(small, f.metadata, &out));
    write("fuzz_safetensors", "stories260K_toy.safetensors", out);
    uint64_t hn = 0;
    std::memcpy(&hn, real.data(), 8);
    write("fuzz_json", "stories260K_header.json", real.data() + 8, size_t(hn));
  }
}

void json_seeds(const std::string& shared) {
  write("fuzz_json", "values.json",
        std::string(R"({"a":[1,-0,2.5e-3,1E+2,true,false,null,"s"],"o":{"k":{}},"e":[]})"));
  write("fuzz_json", "strings.json",
        std::string(R"(["\"\\\/\b\f\n\r\t","\u0041\u00e9\u20ac","\ud83d\ude00","raw é ▁ 😀"])"));
  write("fuzz_json", "nested.json", std::string(60, '[') + "0" + std::string(60, ']'));
  write("fuzz_json", "numbers.json",
        std::string("[0,-1,9007199254740993,1.7976931348623157e308,5e-324,123456789.125,-0.0]"));
  std::vector<uint8_t> cfg;
  if (read(shared + "/hub/karpathy/stories260K/config.json", &cfg)) write("fuzz_json", "config.json", cfg);
}

void gguf_seeds() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 1);
  w.add_f32("llama.rope.freq_base", 10000.0f);
  w.add_bool("general.flag", true);
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "\xe2\x96\x81x"});
  w.add_f32_array("tokenizer.ggml.scores", {0.0f, -1.5f, 2.0f});
  w.add_i32_array("tokenizer.ggml.token_type", {2, 3, 1});
  float f32[4] = {1, -2, 3, -4};
  w.add_tensor("a", {2, 2}, 0, f32, sizeof f32);
  uint16_t f16[2] = {fp32_to_fp16(1.0f), fp32_to_fp16(-0.5f)};
  w.add_tensor("b", {2}, 1, f16, sizeof f16);
  float x[32];
  for (int i = 0; i < 32; ++i) x[i] = std::cos(0.2f * float(i));
  BlockQ8_0 q8;
  check(quantize_row_q8_0(x, 32, &q8));
  w.add_tensor("c", {32}, 8, &q8, sizeof q8);
  BlockQ4_0 q4;
  check(quantize_row_q4_0(x, 32, &q4));
  w.add_tensor("d", {32}, 2, &q4, sizeof q4);
  std::vector<uint8_t> out;
  check(w.finish(&out));
  write("fuzz_gguf", "small.gguf", out);

  // The other block types (raw blocks with plausible fp16 fields): one tensor each, and a
  // K-quant file whose rows are whole 256-blocks.
  GgufWriter k;
  k.add_string("general.architecture", "llama");
  const uint32_t types[] = {3, 6, 7, 12, 13, 14, 30};  // Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K BF16
  for (uint32_t t : types) {
    uint64_t block = 0, bytes = 0;
    if (!ggml_block_info(t, &block, &bytes)) std::abort();
    const uint64_t n = block == 1 ? 64 : block;
    std::vector<uint8_t> data(n / block * bytes);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 37 + t);
    const uint16_t d = fp32_to_fp16(0.01f);
    if (t == 14) std::memcpy(data.data() + 208, &d, 2);
    else if (t != 30) std::memcpy(data.data(), &d, 2);
    k.add_tensor(std::string("t") + ggml_type_name(t), {n}, t, data.data(), data.size());
  }
  std::vector<uint8_t> kout;
  check(k.finish(&kout));
  write("fuzz_gguf", "kquants.gguf", kout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds OUT_DIR [SHARED_DIR]\n");
    return 2;
  }
  g_out = argv[1];
  std::string shared = argc > 2 ? argv[2] : "";
  safetensors_seeds(shared);
  json_seeds(shared);
  gguf_seeds();
  return 0;
}
