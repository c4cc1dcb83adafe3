// The BERT encoder (internal): see webquant/encoder_model.h.
#pragma once

#include <memory>

#include "io/json.h"
#include "webquant/encoder_model.h"

namespace webquant::models {

// model_type "bert": parses config.json (errors name the field) into an architecture to build().
Status make_bert(const io::JsonValue& config, std::unique_ptr<EncoderArchitecture>* out);

}  // namespace webquant::models
