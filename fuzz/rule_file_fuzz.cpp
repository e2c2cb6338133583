// libFuzzer target: any bytes as a rule file. A file either loads or is refused with
// located errors; one that loads evaluates a transaction without crashing.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz/sample_event.h"
#include "rules/rule_set.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto rules = fraud::rules::RuleSet::parse(text, "fuzz.yaml");
    std::vector<fraud::rules::Value> features(rules.features().size());  // all missing
    auto verdict = rules.evaluate(fraud::fuzz::sample_event(), features);
    if (verdict.hits.size() > rules.rules().size()) std::abort();
  } catch (const fraud::rules::RuleFileError& e) {
    if (e.errors.empty()) std::abort();  // a refusal always says why
  }
  return 0;
}
