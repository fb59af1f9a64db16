// fuzz_json.cpp — the safetensors header's JSON parser (src/json.h), directly.
//
// Besides "no crash, only clear errors", a document that parses is written
// back with the library's own writers (json_string, json_integers) and parsed
// again: the two trees must be equal, so the writer and the parser agree on
// every string the parser accepts (escapes, \u sequences, UTF-8).
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "json.h"

namespace {

using byhand::Json;

std::string write(const Json& j) {
  switch (j.kind) {
    case Json::Kind::String: return byhand::json_string(j.string);
    case Json::Kind::Integer: return std::to_string(j.integer);
    case Json::Kind::Array: {
      std::string s = "[";
      for (size_t i = 0; i < j.items.size(); ++i) s += (i ? "," : "") + write(j.items[i]);
      return s + "]";
    }
    case Json::Kind::Object: {
      std::string s = "{";
      for (size_t i = 0; i < j.members.size(); ++i)
        s += (i ? "," : "") + byhand::json_string(j.members[i].first) + ":" +
             write(j.members[i].second);
      return s + "}";
    }
  }
  return "";
}

bool equal(const Json& a, const Json& b) {
  if (a.kind != b.kind || a.string != b.string || a.integer != b.integer ||
      a.items.size() != b.items.size() || a.members.size() != b.members.size())
    return false;
  for (size_t i = 0; i < a.items.size(); ++i)
    if (!equal(a.items[i], b.items[i])) return false;
  for (size_t i = 0; i < a.members.size(); ++i)
    if (a.members[i].first != b.members[i].first || !equal(a.members[i].second, b.members[i].second))
      return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clean_errors("fuzz.safetensors", [&] {
    const Json doc = byhand::parse_json(text, "fuzz.safetensors");
    const std::string again = write(doc);
    Json back;
    try {
      back = byhand::parse_json(again, "rewritten");
    } catch (const std::exception& e) {
      fuzz::bug("the parser refuses what the writer wrote", std::string(e.what()) + "\n" + again);
    }
    if (!equal(doc, back)) fuzz::bug("written and parsed again, the document changed", again);
  });
  return 0;
}
