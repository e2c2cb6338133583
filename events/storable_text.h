#pragma once
// Text PostgreSQL will store: producers' bytes (a reason quoting them, a header's value) must
// never be what makes a batch fail.

#include <string>
#include <string_view>

namespace fraud::events {

/// True when `text` can be stored in a PostgreSQL text column: valid UTF-8 without NUL.
bool is_storable_text(std::string_view text);

/// `text` made storable: every byte that is not part of a valid UTF-8 character (and every
/// NUL) becomes the four characters \xNN. Valid text comes back unchanged.
std::string storable_text(std::string_view text);

}  // namespace fraud::events
