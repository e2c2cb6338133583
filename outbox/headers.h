#pragma once
// The Kafka headers an outbox row carries in its headers column, as JSON: [[name, value], …]
// or {name: value}. A name or value that is not text is {"hex": "…"}; a value may be null (a
// header without a value). The service's own outbox writes them this way (store/sql_text.h,
// headers_json), from the records it dead-letters; a bank's outbox table may too.

#include <optional>
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

/// One header: its name's bytes and its value's, or no value.
using Header = std::pair<std::string, std::optional<std::string>>;

/// The headers, in order. An empty column is no headers. Throws HeadersError saying what is
/// wrong and where (which header) for anything else.
std::vector<Header> parse_headers(std::string_view json);

}  // namespace fraud::outbox
