#pragma once
// Writing JSON text: the service's outputs (logs, headers) are small and flat, so a string
// escaper is all they need.

#include <boost/algorithm/hex.hpp>
#include <iterator>
#include <string>
#include <string_view>

namespace fraud::events {

/// Appends `value` to `out` as a JSON string literal. `value` must be valid UTF-8.
inline void append_json_string(std::string& out, std::string_view value) {
  out += '"';
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += "\\u00";
      boost::algorithm::hex_lower(&c, &c + 1, std::back_inserter(out));
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

}  // namespace fraud::events
