#include "models/llama/llama_rope.h"

namespace webquant::models {

void rescale_llama_rope(const LlamaConfig& c, std::vector<float>* inv_freq) {
  if (c.rope_type == "linear") {
    for (float& f : *inv_freq) f /= c.rope_factor;
  } else if (c.rope_type == "llama3") {
    const float pi = 3.14159265358979323846f;
    const float old_ctx = static_cast<float>(c.rope_original_max_position_embeddings);
    const float low_wavelen = old_ctx / c.rope_low_freq_factor;
    const float high_wavelen = old_ctx / c.rope_high_freq_factor;
    for (float& f : *inv_freq) {
      const float wavelen = 2.0f * pi / f;
      float g = wavelen > low_wavelen ? f / c.rope_factor : f;
      if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
        const float smooth = (old_ctx / wavelen - c.rope_low_freq_factor) /
                             (c.rope_high_freq_factor - c.rope_low_freq_factor);
        g = (1.0f - smooth) * g / c.rope_factor + smooth * g;
      }
      f = g;
    }
  }
}

}  // namespace webquant::models
