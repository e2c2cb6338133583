#include <doctest/doctest.h>

#include "events/money.h"

using namespace fraud::events;

namespace {
std::optional<Money> money(std::string_view value, std::string_view currency) {
  std::string error;
  return parse_money(value, currency, error);
}
}  // namespace

TEST_CASE("amounts become exact minor units with the currency's exponent") {
  CHECK(money("1250.00", "EUR")->minor_units == 125000);
  CHECK(money("1250", "EUR")->minor_units == 125000);
  CHECK(money("0.1", "EUR")->minor_units == 10);
  CHECK(money("1000", "JPY")->minor_units == 1000);
  CHECK(money("1.234", "BHD")->minor_units == 1234);
  CHECK(money("999999999999999.99", "USD")->minor_units == 99999999999999999LL);
}

TEST_CASE("more fractional digits than the currency allows is an error, not a rounding") {
  std::string error;
  CHECK_FALSE(parse_money("10.5", "JPY", error));
  CHECK(error.find("JPY allows 0") != std::string::npos);
  CHECK_FALSE(money("10.001", "EUR"));
}

TEST_CASE("malformed, zero, unknown-currency and out-of-range amounts are refused") {
  for (auto bad : {"", ".5", "5.", "1e5", "-1", "+1", "1,00", "0.00", "1234567890123456", "12.34567"})
    CHECK_MESSAGE(!money(bad, "EUR"), bad);
  CHECK_FALSE(money("1.00", "EURO"));
  CHECK_FALSE(money("1.00", "XAU"));
  CHECK_FALSE(money("999999999999999.9999", "CLF"));  // 10^19 minor units overflow int64
}

TEST_CASE("money formats back with its exponent") {
  CHECK(format_money({125000, "EUR", 2}) == "1250.00");
  CHECK(format_money({5, "EUR", 2}) == "0.05");
  CHECK(format_money({1000, "JPY", 0}) == "1000");
  CHECK(format_money({1234, "BHD", 3}) == "1.234");
}
