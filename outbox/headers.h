#pragma once
// The Kafka headers an outbox row carries in its headers column, as JSON: [[name, value], …]
// or {name: value}; a value {"hex": "…"} holds bytes that are not text. The service's own
// outbox writes them this way (store/sql_text.h, headers_json); a bank's relay table may too.

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fraud::outbox {

/// A headers column the relay cannot read: the row is refused for what it is.
struct HeadersError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// The headers, in order, as (name, bytes). An empty column is no headers. Throws
/// HeadersError saying what is wrong and where (which header) for anything else.
std::vector<std::pair<std::string, std::string>> parse_headers(std::string_view json);

}  // namespace fraud::outbox
