// json.cpp — the JSON writer and strict parser for safetensors headers (json.h).
#include "json.h"

#include <cstdint>
#include <cstdio>
#include <set>
#include <stdexcept>

namespace byhand {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {  // control characters: \u00XX
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", unsigned(c));
      out += esc;
    } else {
      out += c;  // everything else, UTF-8 included, as it is
    }
  }
  return out + "\"";
}

std::string json_integers(const std::vector<int64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out + "]";
}

namespace {

// Strict: anything but the four kinds above (true, false, null, negative or
// fractional numbers), a duplicate key, a trailing comma or trailing text is an
// error that says at which byte of the header it was found.
class JsonParser {
 public:
  JsonParser(std::string_view text, std::string where) : text_(text), where_(std::move(where)) {}

  Json parse_document() {
    skip_whitespace();
    Json root = parse_value(0);
    skip_whitespace();  // the spaces that pad the header to a multiple of 8
    if (pos_ != text_.size()) fail("unexpected text after the JSON object");
    return root;
  }

 private:
  // A safetensors header nests three levels deep; refusing deeper input keeps
  // a malicious "[[[[..." from exhausting the stack.
  static constexpr int kMaxDepth = 8;

  std::string_view text_;
  std::string where_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }
  [[noreturn]] void fail_at(size_t pos, const std::string& what) const {
    throw std::runtime_error(where_ + ": invalid JSON in the header at byte " +
                             std::to_string(pos) + ": " + what);
  }

  bool at_end() const { return pos_ >= text_.size(); }
  bool next_is(char c) const { return !at_end() && text_[pos_] == c; }

  void skip_whitespace() {
    while (!at_end() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                         text_[pos_] == '\r'))
      ++pos_;
  }

  void expect(char c, const char* what) {
    if (!next_is(c)) fail(at_end() ? "unexpected end of the header, expected " + std::string(what)
                                   : "expected " + std::string(what));
    ++pos_;
  }

  Json parse_value(int depth) {
    if (depth > kMaxDepth) fail("nested deeper than a safetensors header ever is");
    if (at_end()) fail("unexpected end of the header, expected a value");
    const char c = text_[pos_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    Json v;
    if (c == '"') {
      v.kind = Json::Kind::String;
      v.string = parse_string();
    } else if (c >= '0' && c <= '9') {
      v.kind = Json::Kind::Integer;
      v.integer = parse_integer();
    } else {
      fail("expected an object, an array, a string or a non-negative integer "
           "(a safetensors header holds nothing else)");
    }
    return v;
  }

  Json parse_object(int depth) {
    Json obj;
    obj.kind = Json::Kind::Object;
    std::set<std::string> keys;
    expect('{', "'{'");
    skip_whitespace();
    if (next_is('}')) {
      ++pos_;
      return obj;
    }
    while (true) {
      skip_whitespace();
      const size_t key_pos = pos_;
      if (!next_is('"')) fail("expected a string key");
      std::string key = parse_string();
      if (!keys.insert(key).second) fail_at(key_pos, "duplicate key " + json_string(key));
      skip_whitespace();
      expect(':', "':'");
      skip_whitespace();
      obj.members.emplace_back(std::move(key), parse_value(depth + 1));
      skip_whitespace();
      if (next_is('}')) break;
      expect(',', "',' or '}'");
    }
    ++pos_;
    return obj;
  }

  Json parse_array(int depth) {
    Json arr;
    arr.kind = Json::Kind::Array;
    expect('[', "'['");
    skip_whitespace();
    if (next_is(']')) {
      ++pos_;
      return arr;
    }
    while (true) {
      skip_whitespace();
      arr.items.push_back(parse_value(depth + 1));
      skip_whitespace();
      if (next_is(']')) break;
      expect(',', "',' or ']'");
    }
    ++pos_;
    return arr;
  }

  std::string parse_string() {
    ++pos_;  // the opening quote
    std::string s;
    while (true) {
      if (at_end()) fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(text_[pos_++]);
      if (c == '"') return s;
      if (c < 0x20) fail_at(pos_ - 1, "unescaped control character in a string");
      if (c != '\\') {
        s += char(c);
        continue;
      }
      if (at_end()) fail("unterminated string");
      const char e = text_[pos_++];
      switch (e) {
        case '"': case '\\': case '/': s += e; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'n': s += '\n'; break;
        case 'r': s += '\r'; break;
        case 't': s += '\t'; break;
        case 'u': append_utf8(s, parse_unicode_escape()); break;
        default: fail_at(pos_ - 2, std::string("invalid escape \\") + e);
      }
    }
  }

  // After "\u": four hex digits, or two such escapes for a character beyond
  // U+FFFF (a UTF-16 surrogate pair, high then low).
  uint32_t parse_unicode_escape() {
    const uint32_t first = parse_hex4();
    if (first >= 0xDC00 && first <= 0xDFFF) fail("unpaired low surrogate");
    if (first < 0xD800 || first > 0xDBFF) return first;
    if (text_.substr(pos_, 2) != "\\u") fail("high surrogate without its low surrogate");
    pos_ += 2;
    const uint32_t second = parse_hex4();
    if (second < 0xDC00 || second > 0xDFFF) fail("high surrogate without its low surrogate");
    return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
  }

  uint32_t parse_hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      const char c = at_end() ? '\0' : text_[pos_];
      uint32_t digit;
      if (c >= '0' && c <= '9') digit = uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') digit = uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') digit = uint32_t(c - 'A' + 10);
      else fail("expected 4 hex digits after \\u");
      v = v * 16 + digit;
    }
    return v;
  }

  static void append_utf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s += char(cp);
    } else if (cp < 0x800) {
      s += char(0xC0 | (cp >> 6));
      s += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += char(0xE0 | (cp >> 12));
      s += char(0x80 | ((cp >> 6) & 0x3F));
      s += char(0x80 | (cp & 0x3F));
    } else {
      s += char(0xF0 | (cp >> 18));
      s += char(0x80 | ((cp >> 12) & 0x3F));
      s += char(0x80 | ((cp >> 6) & 0x3F));
      s += char(0x80 | (cp & 0x3F));
    }
  }

  int64_t parse_integer() {
    const size_t start = pos_;
    int64_t v = 0;
    while (!at_end() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const int digit = text_[pos_] - '0';
      if (v > (INT64_MAX - digit) / 10) fail_at(start, "integer too large");
      v = v * 10 + digit;
      ++pos_;
    }
    if (pos_ - start > 1 && text_[start] == '0') fail_at(start, "integer with a leading zero");
    if (next_is('.') || next_is('e') || next_is('E'))
      fail_at(start, "expected an integer (a safetensors header holds no fractions)");
    return v;
  }
};

}  // namespace

Json parse_json(std::string_view text, const std::string& where) {
  return JsonParser(text, where).parse_document();
}

}  // namespace byhand
