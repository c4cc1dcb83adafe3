// libFuzzer target: the JSON parser on arbitrary bytes. Whatever parses must write back to JSON
// that parses again and writes to the same text (write_json is a fixed point after one round).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "io/json.h"

using namespace webquant::io;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  JsonValue v;
  webquant::Status st = parse_json(text, &v);
  if (!st.ok()) {
    if (st.code != webquant::StatusCode::kCorruptData || st.message.empty()) abort();
    return 0;
  }
  std::string once = write_json(v);
  JsonValue back;
  if (!parse_json(once, &back).ok()) abort();
  if (write_json(back) != once) abort();
  return 0;
}
