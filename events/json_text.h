#pragma once
// Writing JSON text: the service's outputs (logs, headers) are small and flat, so a string
// escaper is all they need.

#include <string>
#include <string_view>

namespace fraud::events {

/// Appends `value` to `out` as a JSON string literal. `value` must be valid UTF-8.
inline void append_json_string(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

}  // namespace fraud::events
