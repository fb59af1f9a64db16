// json.h — the little JSON that a safetensors header needs (internal to safetensors.cpp).
//
// A safetensors header is a JSON object of objects holding strings and
// integer arrays, plus an optional string-to-string "__metadata__" map. This
// writes those and parses them strictly (no true/false/null, no fractions or
// negative numbers, no duplicate keys), reporting the byte where input went
// wrong. It is not a general JSON library, on purpose.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace byhand {

// "text" with quotes, backslashes and control characters escaped.
std::string json_string(const std::string& s);
// [1,2,3]
std::string json_integers(const std::vector<int64_t>& v);

struct Json {
  enum class Kind { Object, Array, String, Integer };
  Kind kind = Kind::Object;
  std::string string;                                 // Kind::String
  int64_t integer = 0;                                // Kind::Integer
  std::vector<Json> items;                            // Kind::Array
  std::vector<std::pair<std::string, Json>> members;  // Kind::Object, in file order
};

// Parses a whole document; throws std::runtime_error("<where>: ... at byte N").
Json parse_json(std::string_view text, const std::string& where);

}  // namespace byhand
