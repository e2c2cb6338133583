// libFuzzer target: any bytes as a `when:` expression over the event's fields and the
// starter pack's feature and list names (so its expressions are useful seeds). One that
// compiles evaluates and explains itself without crashing.
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz/sample_event.h"
#include "rules/expression.h"

namespace {

using fraud::rules::Type;
using fraud::rules::Value;

const fraud::rules::Schema& schema() {
  static const fraud::rules::Schema s{{{"tx_count_10m", Type::number},
                                       {"tx_count_1h", Type::number},
                                       {"tx_count_30d", Type::number},
                                       {"spend_24h", Type::number},
                                       {"spend_30d", Type::number},
                                       {"near_limit_deposits_24h", Type::number},
                                       {"card_present_speed_kmh", Type::number},
                                       {"idle_seconds", Type::number},
                                       {"cards_per_device_1h", Type::number},
                                       {"new_counterparty", Type::boolean}},
                                      {{"high_risk_countries", {"KP", "IR"}}, {"high_risk_mccs", {"7995", "6051"}}},
                                      4096,
                                      64};
  return s;
}

Value number(const char* text) { return Value::of(*fraud::rules::Decimal::parse(text)); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto expression = fraud::rules::Expression::compile(text, schema());
    const auto& event = fraud::fuzz::sample_event();
    // Some features known, some missing (no data yet), so both logics are exercised.
    std::vector<Value> features = {number("6"), number("7"),    Value{},       number("1500.5"),
                                   number("0"), Value{},        number("950"), number("20000000"),
                                   number("4"), Value::of(true)};
    fraud::rules::EvalContext context{event, number("1250"), features};
    expression.evaluate(context);
    expression.explain(context);
  } catch (const fraud::rules::ExpressionError&) {
  }
  return 0;
}
