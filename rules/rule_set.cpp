#include "rules/rule_set.h"

#include <algorithm>

#include "events/money.h"
#include "rules/decimal.h"

namespace fraud::rules {

const char* to_string(Decision decision) {
  switch (decision) {
    case Decision::allow: return "allow";
    case Decision::review: return "review";
    case Decision::block: return "block";
  }
  return "allow";
}

bool windowed(Aggregate a) {
  return a != Aggregate::time_since_last && a != Aggregate::first_seen && a != Aggregate::speed_kmh;
}

std::optional<events::Timestamp> parse_duration(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  auto n = Decimal::parse(text.substr(0, text.size() - 1));
  if (!n || !(Decimal() < *n)) return std::nullopt;
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return std::nullopt;
  }
  constexpr int128 kCentury = int128{100} * 366 * 86400 * Decimal::kScale;
  auto micros = n->micros() * unit;
  if (micros > kCentury) return std::nullopt;
  return static_cast<events::Timestamp>(micros);
}

Type FeatureSpec::type() const { return aggregate == Aggregate::first_seen ? Type::boolean : Type::number; }

RuleFileError::RuleFileError(std::vector<std::string> all)
    : std::runtime_error(all.empty() ? "invalid rule file" : all.front()), errors(std::move(all)) {}

Value RuleSet::amount_base(const events::Event& event) const {
  auto rate = rates_.find(event.amount.currency);
  if (rate == rates_.end()) return {};
  return Value::of(Decimal::from_money(event.amount) * rate->second);
}

Decision RuleSet::decide(int score) const {
  return score >= block_at_ ? Decision::block : score >= review_at_ ? Decision::review : Decision::allow;
}

Verdict RuleSet::evaluate(const events::Event& event, std::span<const Value> features, const RuntimeLists* lists,
                          const std::optional<ListsAsOf>& as_of) const {
  EvalContext context{event, amount_base(event), features};
  context.lists = lists;
  context.lists_as_of = as_of;
  Verdict verdict;
  Decision forced = Decision::allow, shadow_forced = Decision::allow;
  const auto* suppressions = lists ? lists->suppressions_of(event.account_id) : nullptr;
  for (const auto& rule : rules_) {
    if (!rule.when.holds(context)) continue;
    if (suppressions && RuntimeLists::suppressed(*suppressions, rule.id, event.occurred_at, as_of)) {
      verdict.suppressed.push_back(rule.id);
      continue;
    }
    verdict.hits.push_back({rule.id, rule.score, rule.shadow, rule.when.explain(context)});
    verdict.shadow_score += rule.score;
    if (rule.action) shadow_forced = std::max(shadow_forced, *rule.action);
    if (rule.shadow) continue;
    verdict.score += rule.score;
    if (rule.action) forced = std::max(forced, *rule.action);
  }
  if (context.amount_base.is_missing() && on_missing_rate_ != Decision::allow) {
    verdict.hits.push_back({kMissingRateRule, 0, false,
                            "no rate for " + event.amount.currency +
                                " in currency_rates (missing_rate: " + to_string(on_missing_rate_) + ")"});
    forced = std::max(forced, on_missing_rate_);
    shadow_forced = std::max(shadow_forced, on_missing_rate_);
  }
  verdict.decision = std::max(decide(verdict.score), forced);
  verdict.shadow_decision = std::max(decide(verdict.shadow_score), shadow_forced);
  return verdict;
}

std::vector<std::pair<std::string, bool>> RuleSet::rule_ids() const {
  std::vector<std::pair<std::string, bool>> ids;
  for (const auto& rule : rules_) ids.emplace_back(rule.id, rule.shadow);
  if (on_missing_rate_ != Decision::allow) ids.emplace_back(kMissingRateRule, false);
  return ids;
}

std::vector<std::string> RuleSet::currencies_without_rate() const {
  std::vector<std::string> missing;
  for (auto code : events::currency_codes())
    if (!rates_.count(std::string(code))) missing.emplace_back(code);
  return missing;
}

}  // namespace fraud::rules
