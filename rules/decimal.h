#pragma once
// Exact numbers for rules: fixed point with six decimal places in 128 bits. Money compares
// exactly (12500.00 EUR is 12500000000 micro-units), sums of a month of payments cannot
// overflow, and no binary float ever decides whether a rule fires.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "events/event.h"

namespace fraud::rules {

__extension__ typedef __int128 int128;

class Decimal {
 public:
  static constexpr std::int64_t kScale = 1'000'000;

  constexpr Decimal() = default;
  static constexpr Decimal from_micros(int128 micros) { return Decimal(micros); }
  static constexpr Decimal from_int(std::int64_t value) { return Decimal(int128{value} * kScale); }
  /// Minor units with the currency's exponent: 125000 with exponent 2 is 1250.
  static Decimal from_money(const events::Money& money);
  /// Rounded to six decimals; nothing for NaN, infinity or a value beyond ±1e30 (a numeric
  /// attribute of any size must become a missing value, never a wrapped number).
  static std::optional<Decimal> from_double(double value);
  /// Parses "12", "-3.5", "0.000001"; nothing for more than six decimals or anything else.
  static std::optional<Decimal> parse(std::string_view text);

  constexpr int128 micros() const { return micros_; }
  double to_double() const { return static_cast<double>(micros_) / kScale; }
  /// Shortest exact text: "12500", "0.5", "-3.25".
  std::string str() const;

  friend constexpr auto operator<=>(Decimal, Decimal) = default;
  friend constexpr Decimal operator+(Decimal a, Decimal b) { return Decimal(a.micros_ + b.micros_); }
  friend constexpr Decimal operator-(Decimal a, Decimal b) { return Decimal(a.micros_ - b.micros_); }
  friend constexpr Decimal operator-(Decimal a) { return Decimal(-a.micros_); }
  /// Rounded half away from zero to six decimals.
  friend Decimal operator*(Decimal a, Decimal b);
  /// Rounded half away from zero to six decimals; the caller rules out a zero divisor.
  friend Decimal operator/(Decimal a, Decimal b);

  /// The arithmetic of rule expressions, whose operands can be any size a record carries:
  /// nothing when the exact result does not fit (or for a zero divisor), never a wrapped one.
  static std::optional<Decimal> checked_add(Decimal a, Decimal b);
  static std::optional<Decimal> checked_sub(Decimal a, Decimal b);
  static std::optional<Decimal> checked_mul(Decimal a, Decimal b);
  static std::optional<Decimal> checked_div(Decimal a, Decimal b);

 private:
  constexpr explicit Decimal(int128 micros) : micros_(micros) {}
  int128 micros_ = 0;
};

}  // namespace fraud::rules
