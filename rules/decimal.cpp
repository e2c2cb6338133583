#include "rules/decimal.h"

#include <cmath>

namespace fraud::rules {
namespace {

int128 pow10(int n) {
  int128 p = 1;
  while (n-- > 0) p *= 10;
  return p;
}

int128 rounded_div(int128 a, int128 b) {
  int128 q = a / b, r = a % b;
  if (2 * (r < 0 ? -r : r) >= (b < 0 ? -b : b)) q += ((a < 0) != (b < 0)) ? -1 : 1;
  return q;
}

}  // namespace

Decimal Decimal::from_money(const events::Money& money) {
  // Exponents are 0..4, below the six decimals kept here: the conversion is exact.
  return Decimal(int128{money.minor_units} * pow10(6 - money.exponent));
}

std::optional<Decimal> Decimal::from_double(double value) {
  double micros = std::round(value * kScale);
  if (!std::isfinite(micros) || std::fabs(micros) > 1e36) return std::nullopt;  // int128 holds ±1.7e38
  return Decimal(static_cast<int128>(micros));
}

std::optional<Decimal> Decimal::checked_add(Decimal a, Decimal b) {
  int128 r;
  if (__builtin_add_overflow(a.micros_, b.micros_, &r)) return std::nullopt;
  return Decimal(r);
}

std::optional<Decimal> Decimal::checked_sub(Decimal a, Decimal b) {
  int128 r;
  if (__builtin_sub_overflow(a.micros_, b.micros_, &r)) return std::nullopt;
  return Decimal(r);
}

std::optional<Decimal> Decimal::checked_mul(Decimal a, Decimal b) {
  int128 product;
  if (__builtin_mul_overflow(a.micros_, b.micros_, &product)) return std::nullopt;
  return Decimal(rounded_div(product, kScale));
}

std::optional<Decimal> Decimal::checked_div(Decimal a, Decimal b) {
  int128 scaled;
  if (b.micros_ == 0 || __builtin_mul_overflow(a.micros_, int128{kScale}, &scaled)) return std::nullopt;
  return Decimal(rounded_div(scaled, b.micros_));
}

std::optional<Decimal> Decimal::parse(std::string_view text) {
  bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  auto dot = text.find('.');
  auto whole = text.substr(0, dot);
  auto fraction = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 24 || fraction.size() > 6 || (dot != std::string_view::npos && fraction.empty()))
    return std::nullopt;
  int128 micros = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    micros = micros * 10 + (c - '0');
  }
  micros *= kScale;
  int128 scale = kScale / 10;
  for (char c : fraction) {
    if (c < '0' || c > '9') return std::nullopt;
    micros += (c - '0') * scale;
    scale /= 10;
  }
  return Decimal(negative ? -micros : micros);
}

std::string Decimal::str() const {
  int128 v = micros_ < 0 ? -micros_ : micros_;
  std::string whole;
  int128 w = v / kScale;
  do {
    whole.insert(whole.begin(), static_cast<char>('0' + static_cast<int>(w % 10)));
    w /= 10;
  } while (w > 0);
  auto frac = static_cast<std::int64_t>(v % kScale);
  std::string out = (micros_ < 0 ? "-" : "") + whole;
  if (frac == 0) return out;
  std::string digits = std::to_string(frac + kScale).substr(1);
  digits.erase(digits.find_last_not_of('0') + 1);
  return out + "." + digits;
}

Decimal operator*(Decimal a, Decimal b) { return Decimal(rounded_div(a.micros_ * b.micros_, Decimal::kScale)); }

Decimal operator/(Decimal a, Decimal b) { return Decimal(rounded_div(a.micros_ * Decimal::kScale, b.micros_)); }

}  // namespace fraud::rules
