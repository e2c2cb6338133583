#include "rules/expression_functions.h"

#include <chrono>
#include <memory>
#include <optional>

#include <date/tz.h>
#include <re2/re2.h>

#include "events/time.h"

namespace fraud::rules::detail {

namespace {

using Args = std::vector<NodePtr>;

CallPlan abs(const Args& args, std::size_t) {
  require_type(*args[0], Type::number, "the argument of abs()");
  return {Type::number, [](const EvalContext& c, const Args& a) {
            auto v = a[0]->eval(c);
            return v.kind == Value::Kind::number ? Value::of(v.number < Decimal() ? -v.number : v.number) : Value{};
          }};
}

template <bool kWantMax>
CallPlan extreme(const Args& args, std::size_t) {
  for (auto& a : args) require_type(*a, Type::number, kWantMax ? "each argument of max()" : "each argument of min()");
  return {Type::number, [](const EvalContext& c, const Args& a) {
            Value best;
            for (const auto& arg : a) {
              auto v = arg->eval(c);
              if (v.kind != Value::Kind::number) return Value{};
              if (best.is_missing() || (kWantMax ? best.number < v.number : v.number < best.number)) best = v;
            }
            return best;
          }};
}

CallPlan coalesce(const Args& args, std::size_t) {
  Type type = args[0]->type;
  for (auto& a : args) require_type(*a, type, "each argument of coalesce()");
  return {type, [](const EvalContext& c, const Args& a) {
            for (const auto& arg : a)
              if (auto v = arg->eval(c); !v.is_missing()) return v;
            return Value{};
          }};
}

CallPlan exists(const Args&, std::size_t) {
  return {Type::boolean, [](const EvalContext& c, const Args& a) { return Value::of(!a[0]->eval(c).is_missing()); }};
}

/// Two strings in, a boolean out; missing when either is.
template <bool (*kTest)(std::string_view, std::string_view)>
CallPlan string_test(const Args& args, const char* name) {
  require_type(*args[0], Type::string, std::string("the first argument of ") + name + "()");
  require_type(*args[1], Type::string, std::string("the second argument of ") + name + "()");
  return {Type::boolean, [](const EvalContext& c, const Args& a) {
            auto s = a[0]->eval(c), other = a[1]->eval(c);
            if (s.kind != Value::Kind::string || other.kind != Value::Kind::string) return Value{};
            return Value::of(kTest(s.string, other.string));
          }};
}

bool starts_with_test(std::string_view s, std::string_view prefix) { return s.starts_with(prefix); }
bool contains_test(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }
CallPlan starts_with(const Args& args, std::size_t) { return string_test<starts_with_test>(args, "starts_with"); }
CallPlan contains(const Args& args, std::size_t) { return string_test<contains_test>(args, "contains"); }

CallPlan lower(const Args& args, std::size_t) {
  require_type(*args[0], Type::string, "the argument of lower()");
  return {Type::string, [](const EvalContext& c, const Args& a) {
            auto s = a[0]->eval(c);
            if (s.kind != Value::Kind::string) return Value{};
            auto& lowered = c.scratch.emplace_front(s.string);
            for (auto& ch : lowered)  // ASCII letters only: other bytes (UTF-8 included) stay as they are
              if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
            return Value::of(std::string_view(lowered));
          }};
}

// matches(field, 'pattern'): whether the pattern matches anywhere in the string (anchor it
// with ^ and $ for the whole string). RE2 syntax, compiled once when the rule file loads;
// RE2 runs in time linear in the input whatever the pattern (no backtracking), and a
// pattern that needs more than kRegexMemory to compile is a load error.
constexpr std::int64_t kRegexMemory = 1 << 20;

CallPlan matches(const Args& args, std::size_t) {
  require_type(*args[0], Type::string, "the first argument of matches()");
  const auto* literal = literal_of(*args[1], Value::Kind::string);
  if (!literal)
    throw ExpressionError(
        "matches()'s second argument must be a pattern in a string literal, e.g. matches(merchant.name, '^ACME')",
        args[1]->offset);
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(kRegexMemory);
  auto pattern = std::make_shared<const RE2>(std::string(literal->value.string), options);
  if (!pattern->ok()) throw ExpressionError("matches(): invalid pattern: " + pattern->error(), args[1]->offset);
  return {Type::boolean, [pattern](const EvalContext& c, const Args& a) {
            auto s = a[0]->eval(c);
            if (s.kind != Value::Kind::string) return Value{};
            return Value::of(RE2::PartialMatch(re2::StringPiece(s.string.data(), s.string.size()), *pattern));
          }};
}

CallPlan is_round(const Args& args, std::size_t) {
  require_type(*args[0], Type::number, "the first argument of is_round()");
  const auto* unit = literal_of(*args[1], Value::Kind::number);
  if (!unit || !(Decimal() < unit->value.number))
    throw ExpressionError("is_round()'s second argument must be a positive number literal, e.g. is_round(amount, 100)",
                          args[1]->offset);
  return {Type::boolean, [](const EvalContext& c, const Args& a) {
            auto v = a[0]->eval(c), u = a[1]->eval(c);
            if (v.kind != Value::Kind::number) return Value{};
            return Value::of(v.number.micros() % u.number.micros() == 0);
          }};
}

/// 'UTC', 'Z', '+01:00', '-05:30' as microseconds east of UTC; nothing for anything else.
std::optional<events::Timestamp> fixed_offset(const std::string& zone) {
  if (zone == "UTC" || zone == "Z") return 0;
  if (zone.empty() || (zone[0] != '+' && zone[0] != '-')) return std::nullopt;
  if (auto t = events::parse_rfc3339("1970-01-01T00:00:00" + zone)) return -*t;
  return std::nullopt;
}

/// The hour (0-23) of a local time given as microseconds since the local epoch.
std::int64_t hour_at(std::int64_t local_us) {
  constexpr std::int64_t kHour = 3'600'000'000LL, kDay = 24 * kHour;
  return ((local_us % kDay) + kDay) % kDay / kHour;
}

// hour_of_day('Europe/Berlin'), hour_of_day('UTC') or hour_of_day('+01:00'): the hour of
// the event's occurred_at on the wall clock of an IANA time zone (daylight saving included,
// from the system's time-zone database through the date library) or at a fixed offset. The
// zone is looked up once, when the rule file loads; an unknown one is a load error.
CallPlan hour_of_day(const Args& args, std::size_t offset) {
  const auto* literal = literal_of(*args[0], Value::Kind::string);
  if (!literal)
    throw ExpressionError("hour_of_day() takes one time zone as a string literal: 'Europe/Berlin', 'UTC', '+01:00'",
                          offset);
  auto name = std::string(literal->value.string);
  std::function<std::int64_t(events::Timestamp)> local_hour;
  if (auto east = fixed_offset(name)) {
    local_hour = [us = *east](events::Timestamp t) { return hour_at(t + us); };
  } else {
    const date::time_zone* zone = nullptr;
    try {
      zone = date::locate_zone(name);
    } catch (const std::exception&) {
      throw ExpressionError(
          "hour_of_day(): unknown time zone '" + name + "' (an IANA name such as 'Europe/Berlin', or 'UTC', '+01:00')",
          args[0]->offset);
    }
    local_hour = [zone](events::Timestamp t) {
      auto instant = date::sys_time<std::chrono::microseconds>(std::chrono::microseconds(t));
      return hour_at(zone->to_local(instant).time_since_epoch().count());
    };
  }
  return {Type::number, [local_hour](const EvalContext& c, const Args&) {
            return Value::of(Decimal::from_int(local_hour(c.event.occurred_at)));
          }};
}

const Function kFunctions[] = {
    {"abs", 1, 1, "abs(amount - 100)", abs},
    {"min", 2, Function::kAny, "min(spend_24h, 5000)", extreme<false>},
    {"max", 2, Function::kAny, "max(tx_count_10m, tx_count_1h)", extreme<true>},
    {"coalesce", 2, Function::kAny, "coalesce(spend_24h, 0)", coalesce},
    {"exists", 1, 1, "exists(merchant.mcc)", exists},
    {"starts_with", 2, 2, "starts_with(card.bin, '4')", starts_with},
    {"contains", 2, 2, "contains(merchant.name, 'CASINO')", contains},
    {"lower", 1, 1, "lower(merchant.name)", lower},
    {"matches", 2, 2, "matches(merchant.name, '^ACME')", matches},
    {"is_round", 2, 2, "is_round(amount, 100)", is_round},
    {"hour_of_day", 1, 1, "hour_of_day('Europe/Berlin')", hour_of_day},
};

}  // namespace

std::span<const Function> functions() { return kFunctions; }

const Function* find_function(std::string_view name) {
  for (const auto& f : kFunctions)
    if (f.name == name) return &f;
  return nullptr;
}

std::string function_names() {
  std::string out;
  for (const auto& f : kFunctions) {
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

}  // namespace fraud::rules::detail
