#include "rules/rule_set.h"

#include "events/money.h"

namespace fraud::rules {

std::optional<RuleHit> LargeAmountRule::evaluate(const events::Event& event) const {
  const auto& amount = event.amount;
  if (amount.currency != threshold.currency || amount.minor_units <= threshold.minor_units) return std::nullopt;
  return RuleHit{id, 100, decision,
                 "amount " + events::format_money(amount) + " " + amount.currency + " > " +
                     events::format_money(threshold) + " " + threshold.currency};
}

RuleSet::RuleSet(std::string version, std::vector<LargeAmountRule> rules)
    : version_(std::move(version)), rules_(std::move(rules)) {}

std::vector<std::pair<std::string, std::string>> RuleSet::alert_kinds() const {
  std::vector<std::pair<std::string, std::string>> kinds;
  for (const auto& rule : rules_) kinds.emplace_back(rule.id, rule.decision);
  return kinds;
}

std::vector<RuleHit> RuleSet::evaluate(const events::Event& event) const {
  std::vector<RuleHit> hits;
  for (const auto& rule : rules_)
    if (auto hit = rule.evaluate(event)) hits.push_back(std::move(*hit));
  return hits;
}

}  // namespace fraud::rules
