#include "outbox/headers.h"

#include <simdjson.h>

#include <boost/algorithm/hex.hpp>
#include <iterator>

namespace fraud::outbox {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string bytes_of(std::string_view name, simdjson::dom::element value) {
  std::string_view text, hex;
  if (value.get(text) == simdjson::SUCCESS) return std::string(text);
  if (value["hex"].get(hex) != simdjson::SUCCESS)
    throw HeadersError("header '" + std::string(name) + "': a value is a string or {\"hex\": \"…\"}");
  std::string bytes;
  try {
    boost::algorithm::unhex(hex.begin(), hex.end(), std::back_inserter(bytes));
  } catch (const boost::algorithm::hex_decode_error&) {
    throw HeadersError("header '" + std::string(name) + "': \"hex\" is not an even number of hex digits");
  }
  return bytes;
}

}  // namespace

Headers parse_headers(std::string_view json) {
  Headers headers;
  if (json.empty()) return headers;
  thread_local simdjson::dom::parser parser;  // keeps its buffers from row to row
  simdjson::dom::element doc;
  if (auto error = parser.parse(json.data(), json.size()).get(doc))
    throw HeadersError(std::string("not JSON: ") + simdjson::error_message(error));
  simdjson::dom::array pairs;
  simdjson::dom::object map;
  if (doc.get(pairs) == simdjson::SUCCESS) {
    std::size_t index = 0;
    for (simdjson::dom::element pair : pairs) {
      std::string_view name;
      simdjson::dom::element value;
      simdjson::dom::array items;
      if (pair.get(items) || items.size() != 2 || items.at(0).get(name) || items.at(1).get(value))
        throw HeadersError("header " + std::to_string(index) + ": not a [name, value] pair");
      headers.emplace_back(std::string(name), bytes_of(name, value));
      ++index;
    }
  } else if (doc.get(map) == simdjson::SUCCESS) {
    for (auto [name, value] : map) headers.emplace_back(std::string(name), bytes_of(name, value));
  } else if (!doc.is_null()) {
    throw HeadersError("neither [[name, value], …] nor {name: value}");
  }
  return headers;
}

}  // namespace fraud::outbox
