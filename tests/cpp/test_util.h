// Small helpers the C++ test files share: reading a whole file and editing a config text.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace webquant::testing {

// The whole file at `path` (fails the test when it cannot be opened).
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open " << path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// `s` with the first occurrence of `from` replaced by `to` (fails the test when `from` is absent).
inline std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "'" << from << "' not in text");
  return s.replace(at, from.size(), to);
}

}  // namespace webquant::testing
