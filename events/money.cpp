#include "events/money.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

namespace fraud::events {
namespace {

// Active ISO 4217 codes by minor-unit exponent. Codes without minor units (gold, SDR) are
// not money a bank account moves and are rejected.
constexpr std::string_view kExponent0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF";
constexpr std::string_view kExponent3 = "BHD IQD JOD KWD LYD OMR TND";
constexpr std::string_view kExponent4 = "CLF UYW";
constexpr std::string_view kExponent2 =
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW "
    "KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN "
    "NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
    "SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU "
    "UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL";

void add_codes(std::unordered_map<std::string_view, int>& table, std::string_view codes, int exponent) {
  for (std::size_t at = 0; at + 3 <= codes.size(); at += 4) table.emplace(codes.substr(at, 3), exponent);
}

const std::unordered_map<std::string_view, int>& exponents() {
  static const auto table = [] {
    std::unordered_map<std::string_view, int> t;
    add_codes(t, kExponent0, 0);
    add_codes(t, kExponent2, 2);
    add_codes(t, kExponent3, 3);
    add_codes(t, kExponent4, 4);
    return t;
  }();
  return table;
}

}  // namespace

std::vector<std::string_view> currency_codes() {
  std::vector<std::string_view> codes;
  for (const auto& [code, exponent] : exponents()) codes.push_back(code);
  std::sort(codes.begin(), codes.end());
  return codes;
}

namespace {

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return !s.empty();
}

// Accumulates decimal digits into `out`, failing instead of overflowing.
bool accumulate(std::int64_t& out, std::string_view digits) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  for (char c : digits) {
    if (out > (kMax - (c - '0')) / 10) return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

}  // namespace

std::optional<int> currency_exponent(std::string_view code) {
  auto it = exponents().find(code);
  if (it == exponents().end()) return std::nullopt;
  return it->second;
}

std::optional<Money> parse_money(std::string_view value, std::string_view currency, std::string& error) {
  auto exponent = currency_exponent(currency);
  if (!exponent) {
    error = "amount.currency: '" + std::string(currency) + "' is not an ISO 4217 currency";
    return std::nullopt;
  }
  auto dot = value.find('.');
  std::string_view whole = value.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : value.substr(dot + 1);
  if (!all_digits(whole) || whole.size() > 15 || (dot != std::string_view::npos && !all_digits(fraction)) ||
      fraction.size() > 4) {
    error = "amount.value: '" + std::string(value.substr(0, 40)) + "' is not a decimal of up to 15.4 digits";
    return std::nullopt;
  }
  if (static_cast<int>(fraction.size()) > *exponent) {
    error = "amount.value: '" + std::string(value) + "' has " + std::to_string(fraction.size()) +
            " fractional digits; " + std::string(currency) + " allows " + std::to_string(*exponent);
    return std::nullopt;
  }
  Money money{0, std::string(currency), *exponent};
  bool fits = accumulate(money.minor_units, whole) && accumulate(money.minor_units, fraction) &&
              accumulate(money.minor_units, std::string(*exponent - fraction.size(), '0'));
  if (!fits) {
    error = "amount.value: '" + std::string(value) + "' is out of range";
    return std::nullopt;
  }
  if (money.minor_units == 0) {
    error = "amount.value: must be positive (direction gives the sign)";
    return std::nullopt;
  }
  return money;
}

std::string format_money(const Money& money) {
  std::string digits = std::to_string(money.minor_units);
  if (money.exponent == 0) return digits;
  auto width = static_cast<std::size_t>(money.exponent) + 1;
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  digits.insert(digits.size() - static_cast<std::size_t>(money.exponent), 1, '.');
  return digits;
}

}  // namespace fraud::events
