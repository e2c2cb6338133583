#include "events/storable_text.h"

#include <simdjson.h>

#include <algorithm>
#include <boost/algorithm/hex.hpp>
#include <iterator>

namespace fraud::events {

bool is_storable_text(std::string_view text) {
  return text.find('\0') == std::string_view::npos && simdjson::validate_utf8(text.data(), text.size());
}

namespace {
/// The length of the UTF-8 sequence a lead byte announces (1 for anything else).
std::size_t sequence_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}
}  // namespace

std::string storable_text(std::string_view text) {
  if (is_storable_text(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    auto length = std::min(sequence_length(c), text.size() - i);
    auto sequence = text.substr(i, length);
    if (c != 0 && is_storable_text(sequence)) {
      out += sequence;
      i += length;
    } else {
      out += "\\x";
      boost::algorithm::hex_lower(&c, &c + 1, std::back_inserter(out));
      ++i;
    }
  }
  return out;
}

}  // namespace fraud::events
