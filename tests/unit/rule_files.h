#pragma once
// What the rule-file unit tests (rule_set_test.cpp, runtime_lists_test.cpp) share.

#include <cstdint>
#include <string>

#include "rules/rule_set.h"
#include "tests/support/event_builder.h"

namespace fraud::testing {

/// A purchase of `minor` minor units of `currency`, always with the id e1.
inline events::Event event_of(std::int64_t minor, std::string currency = "EUR") {
  return EventBuilder().id("e1").minor_units(minor, std::move(currency));
}

/// Every error loading `text` reports, one per line; empty when it loads.
inline std::string load_error(const std::string& text, const rules::RuleLimits& limits = {}) {
  try {
    rules::RuleSet::parse(text, "r.yaml", limits);
  } catch (const rules::RuleFileError& e) {
    std::string all;
    for (const auto& error : e.errors) all += error + "\n";
    return all;
  }
  return "";
}

}  // namespace fraud::testing
