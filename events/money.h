#pragma once
// Money is exact: a decimal string becomes integer minor units, never a binary float.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"

namespace fraud::events {

/// The minor-unit exponent of an active ISO 4217 currency (EUR 2, JPY 0, BHD 3), or nothing
/// for a code that is not one.
std::optional<int> currency_exponent(std::string_view code);

/// Every currency code currency_exponent() knows, sorted.
std::vector<std::string_view> currency_codes();

/// Parses `value` (the contract's `^[0-9]{1,15}(\.[0-9]{1,4})?$`) in `currency`. Returns the
/// amount, or sets `error` to what is wrong: not a decimal, too many fractional digits for
/// the currency, zero, out of range, or an unknown currency.
std::optional<Money> parse_money(std::string_view value, std::string_view currency, std::string& error);

/// Formats minor units back as a decimal string with the currency's exponent ("1250.00").
std::string format_money(const Money& money);

}  // namespace fraud::events
