#pragma once
// The rules an event is checked against. For now one placeholder rule, `large_amount`: an
// amount above a configured threshold in the same currency raises an alert. The rule file
// language, features and decisions replace it (see the README's roadmap).

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "events/event.h"

namespace fraud::rules {

/// One rule that fired for one event: what it was and the values that made it fire.
struct RuleHit {
  std::string rule_id;
  int score = 0;
  std::string decision;  ///< allow, review or block
  std::string reason;    ///< human-readable, e.g. "amount 12500.00 EUR > 10000.00 EUR"
};

/// An amount strictly above `threshold` in the threshold's currency. Amounts in other
/// currencies do not fire: converting needs rates, which arrive with rule files.
struct LargeAmountRule {
  std::string id = "large_amount";
  events::Money threshold;
  std::string decision = "review";

  std::optional<RuleHit> evaluate(const events::Event& event) const;
};

/// A versioned set of rules, evaluated in declaration order.
class RuleSet {
 public:
  RuleSet(std::string version, std::vector<LargeAmountRule> rules);

  /// Every rule that fires for `event`; pure, so replaying an event gives the same hits.
  std::vector<RuleHit> evaluate(const events::Event& event) const;

  const std::string& version() const { return version_; }

  /// Every (rule id, decision) an alert of this set can carry: a bounded label set.
  std::vector<std::pair<std::string, std::string>> alert_kinds() const;

 private:
  std::string version_;
  std::vector<LargeAmountRule> rules_;
};

}  // namespace fraud::rules
