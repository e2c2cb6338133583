#include "outbox/headers.h"

#include <simdjson.h>

#include <boost/algorithm/hex.hpp>
#include <iterator>

#include "events/storable_text.h"

namespace fraud::outbox {
namespace {

/// A name or value: text as it is, {"hex": "…"} as its bytes; `what` names it in errors.
std::string bytes_of(simdjson::dom::element element, const std::string& what) {
  std::string_view text, hex;
  if (element.get(text) == simdjson::SUCCESS) return std::string(text);
  if (element.is_object() && element["hex"].get(hex) == simdjson::SUCCESS) {
    std::string bytes;
    try {
      boost::algorithm::unhex(hex.begin(), hex.end(), std::back_inserter(bytes));
    } catch (const boost::algorithm::non_hex_input&) {
      throw HeadersError(what + ": \"hex\" holds a character that is not a hex digit");
    } catch (const boost::algorithm::hex_decode_error&) {
      throw HeadersError(what + ": \"hex\" has an odd number of digits");
    }
    return bytes;
  }
  throw HeadersError(what + ": a string or {\"hex\": \"…\"} was expected");
}

/// A header of the array form; `index` names it in errors until its name is known.
Header header_of(simdjson::dom::element name, simdjson::dom::element value, std::size_t index) {
  auto name_bytes = bytes_of(name, "header " + std::to_string(index) + "'s name");
  if (value.is_null()) return {name_bytes, std::nullopt};
  return {name_bytes, bytes_of(value, "header '" + events::storable_text(name_bytes) + "'")};
}

}  // namespace

std::vector<Header> parse_headers(std::string_view json) {
  std::vector<Header> headers;
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
      simdjson::dom::array items;
      if (pair.get(items) || items.size() != 2)
        throw HeadersError("header " + std::to_string(index) + ": not a [name, value] pair");
      headers.push_back(header_of(items.at(0).value_unsafe(), items.at(1).value_unsafe(), index++));
    }
  } else if (doc.get(map) == simdjson::SUCCESS) {
    for (auto [name, value] : map) {
      if (value.is_null()) headers.emplace_back(std::string(name), std::nullopt);
      else headers.emplace_back(std::string(name), bytes_of(value, "header '" + std::string(name) + "'"));
    }
  } else if (!doc.is_null()) {
    throw HeadersError("neither [[name, value], …] nor {name: value}");
  }
  return headers;
}

}  // namespace fraud::outbox
