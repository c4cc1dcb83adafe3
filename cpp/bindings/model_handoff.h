// Hands a LlamaModel built by one bindings file (bind_checkpoint.cpp's streaming builder) to the
// LlamaModelHandle of another (bind_llama.cpp) without a raw pointer crossing into JavaScript:
// the model is parked under a ticket number that TypeScript passes on. Bindings-internal.
#pragma once

#include <cstdint>
#include <memory>

#include "webquant/llama.h"

namespace webquant::bindings {

// Keeps `model` until taken; returns its ticket (>= 1).
uint32_t park_model(std::unique_ptr<LlamaModel> model);

// The parked model of `ticket`, removed from the park; nullptr for an unknown or taken ticket.
std::unique_ptr<LlamaModel> take_parked_model(uint32_t ticket);

}  // namespace webquant::bindings
