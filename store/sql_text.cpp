#include "store/sql_text.h"

#include <boost/algorithm/hex.hpp>
#include <iterator>

#include "events/json_text.h"
#include "events/storable_text.h"

namespace fraud::store {

namespace {

void append_hex_object(std::string& out, std::string_view bytes) {
  out += "{\"hex\":\"";
  boost::algorithm::hex_lower(bytes.begin(), bytes.end(), std::back_inserter(out));
  out += "\"}";
}

void append_header_text(std::string& out, std::string_view bytes) {
  if (events::is_storable_text(bytes)) events::append_json_string(out, bytes);
  else append_hex_object(out, bytes);
}

}  // namespace

std::string json_string_array(const std::vector<std::string>& values) {
  std::string out = "[";
  for (const auto& value : values) {
    if (out.size() > 1) out += ',';
    events::append_json_string(out, value);
  }
  return out + "]";
}

std::string headers_json(const std::vector<std::pair<std::string, std::optional<std::string>>>& headers) {
  std::string out = "[";
  for (const auto& [name, value] : headers) {
    if (out.size() > 1) out += ',';
    out += '[';
    append_header_text(out, name);
    out += ',';
    if (value) append_header_text(out, *value);
    else out += "null";
    out += ']';
  }
  return out + "]";
}

}  // namespace fraud::store
