#pragma once
// The JSON text a batch sends as statement parameters (array literals are
// postgres/array_literal.h). Values are always bound as parameters, never spliced into SQL.

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fraud::store {

/// Strings as a JSON array, e.g. ["a","b\"c"]: for a jsonb column that holds a list. The
/// strings must be valid UTF-8 (the rule ids of suppressions read from the database are).
std::string json_string_array(const std::vector<std::string>& values);

/// Kafka headers as JSON: [[name, value], …]; a value that is not text is {"hex": "…"}.
std::string headers_json(const std::vector<std::pair<std::string, std::optional<std::string>>>& headers);

}  // namespace fraud::store
