#pragma once
// A rule file, loaded: its version and content hash, named lists, currency rates to one
// base currency, declared features, scored rules and decision thresholds. Evaluating an
// event gives a verdict (score, decision) and, for each rule that fired, an explanation
// with the values it saw. Pure: no Kafka, no SQL, no clock, no file reads past load.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "events/event.h"
#include "rules/decimal.h"
#include "rules/expression.h"
#include "rules/key_field.h"

namespace fraud::rules {

enum class Decision { allow, review, block };

/// "allow", "review" or "block".
const char* to_string(Decision decision);

/// How a feature aggregates an account's (or card's, device's, …) history.
enum class Aggregate { count, sum, min, max, average, distinct_count, time_since_last, first_seen, speed_kmh };

/// Whether `aggregate` reads a window of a key's history (count, sum, …), rather than its one
/// latest earlier event (time_since_last, speed_kmh) or a pair (first_seen).
bool windowed(Aggregate aggregate);

/// "90s", "10m", "24h", "30d" (a positive number and a unit) in microseconds; nothing for
/// anything else, or for more than a hundred years.
std::optional<events::Timestamp> parse_duration(std::string_view text);

/// A declared feature, e.g. `tx_count_10m: {aggregate: count, key: account_id, window: 10m}`.
struct FeatureSpec {
  std::string name;
  Aggregate aggregate = Aggregate::count;
  KeyField key = KeyField::account_id;
  /// The second field of a two-field key (`key: [account_id, merchant.id]`): first_seen
  /// tracks the pair; a windowed aggregate reads the first field's events that share this
  /// field's value with the current event. time_since_last and speed_kmh take one field.
  std::optional<KeyField> paired_with;
  std::string field;                ///< sum/min/max/average: a number field; distinct_count: a string field
  events::Timestamp window_us = 0;  ///< windowed aggregates; 0 for the others
  std::optional<Expression> where;  ///< only history events that satisfy it count
  /// speed_kmh: closer than this is no travel (city-level coordinates are kilometres off)...
  double min_km = 50;
  /// ...and a shorter time than this counts as this long (two taps a minute apart in
  /// neighbouring cities are not a supersonic flight).
  events::Timestamp min_interval_us = 10 * 60'000'000LL;
  Type type() const;
};

/// One rule: a condition, a score (may be negative), an optional forced decision, and a
/// mode: live rules decide, shadow rules are only recorded.
struct Rule {
  std::string id;
  std::string description;
  Expression when;
  int score = 0;
  std::optional<Decision> action;
  bool shadow = false;
};

/// A rule that fired for one event.
struct RuleHit {
  std::string rule_id;
  int score = 0;
  bool shadow = false;
  std::string explanation;  ///< the condition with the values it saw
};

/// What the rules say about one event.
struct Verdict {
  int score = 0;  ///< sum of the live rules that fired
  Decision decision = Decision::allow;
  std::vector<RuleHit> hits;  ///< live and shadow, in file order
  /// What the decision would be with the shadow rules live too: what promoting them changes.
  int shadow_score = 0;
  Decision shadow_decision = Decision::allow;
  /// Rules whose condition held but a suppression for the account silenced (live or shadow):
  /// not hits, counted only in fraud_suppressed_rule_hits_total.
  std::vector<std::string> suppressed;
};

/// The most features a rule file can declare: the feature engine marks which of an event's
/// features' `where` filters hold in one 64-bit mask.
inline constexpr std::size_t kMaxFeatures = 64;

/// The id of the built-in rule that fires for an amount without a rate (RuleSet::on_missing_rate).
inline constexpr const char* kMissingRateRule = "missing_rate";

/// Limits on what a rule file may hold; a file beyond them does not load.
struct RuleLimits {
  std::size_t max_rules = 500;
  std::size_t max_features = 64;
  std::size_t max_expression_length = Schema{}.max_length;
  std::size_t max_expression_depth = Schema{}.max_depth;
};

/// Everything wrong with a rule file, one "file:line:column: message" per entry.
struct RuleFileError : std::runtime_error {
  explicit RuleFileError(std::vector<std::string> all);
  std::vector<std::string> errors;
};

/// Who may add to a runtime list and for how long (`runtime_lists:` in a rule file); the
/// database enforces it (migrations/0026) once `fraud-consumer migrate` recorded it.
struct RuntimeListPolicy {
  std::string list;
  bool leads_only = false;          ///< writer: lead; otherwise any analyst
  std::optional<int> longest_days;  ///< an entry's longest life; none: as long as asked
};

class RuleSet {
 public:
  /// Loads rule-file text. `name` is used in error locations. Throws RuleFileError with
  /// every error found.
  static RuleSet parse(const std::string& text, const std::string& name, const RuleLimits& limits = {});
  /// Reads and loads a file (the only I/O here, at load time).
  static RuleSet load(const std::string& path, const RuleLimits& limits = {});

  /// "<version>+<first 12 hex digits of the content hash>": what alerts record.
  const std::string& version() const { return version_; }
  const std::string& base_currency() const { return base_currency_; }
  const std::vector<FeatureSpec>& features() const { return features_; }
  const std::vector<Rule>& rules() const { return rules_; }
  const Schema& schema() const { return schema_; }
  /// One per runtime list, in file order.
  const std::vector<RuntimeListPolicy>& list_policies() const { return list_policies_; }

  /// The amount in the base currency, or missing when no rate is declared for its currency.
  Value amount_base(const events::Event& event) const;

  /// Evaluates every rule; `features` holds the declared features' values for this event,
  /// in declaration order (missing where unknown); `lists`, the runtime lists' entries and
  /// the suppressions (none: nothing is on them), as of `as_of` (none: by event time,
  /// rules/runtime_lists.h). A rule suppressed for the event's account does not fire, live or
  /// shadow; the built-in missing_rate rule cannot be suppressed.
  Verdict evaluate(const events::Event& event, std::span<const Value> features, const RuntimeLists* lists = nullptr,
                   const std::optional<ListsAsOf>& as_of = std::nullopt) const;

  /// Every (rule id, shadow) pair an alert can carry: a bounded label set for metrics.
  std::vector<std::pair<std::string, bool>> rule_ids() const;

  /// What an event in a currency without a rate gets (`missing_rate:`): its amount rules
  /// cannot fire, so it must never pass unseen. review (the default) or block force that
  /// decision through the built-in rule kMissingRateRule; allow lets it pass, said aloud.
  Decision on_missing_rate() const { return on_missing_rate_; }

  /// The ISO 4217 currencies a record may carry that have no rate here, for `rules check`.
  std::vector<std::string> currencies_without_rate() const;

 private:
  Decision decide(int score) const;

  std::string version_;
  std::string base_currency_;
  std::map<std::string, Decimal> rates_;  ///< one unit of the currency in base units
  Schema schema_;
  std::vector<RuntimeListPolicy> list_policies_;
  std::vector<FeatureSpec> features_;
  std::vector<Rule> rules_;
  int review_at_ = 0, block_at_ = 0;
  Decision on_missing_rate_ = Decision::review;
  friend class RuleFileReader;
};

}  // namespace fraud::rules
