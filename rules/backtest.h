#pragma once
// Backtesting: replay stored history through a candidate rule file beside the active one,
// and say per rule what would fire, how precisely against known labels, and which
// decisions would change; and whether the active file reproduces what the service decided.
// Pure: the caller feeds events in the order the service applied them, and first the
// first-seen pairs the service recorded for their keys.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "rules/features.h"
#include "rules/rule_set.h"
#include "rules/runtime_lists.h"

namespace fraud::rules {

/// Hits of one rule, how many of them were labelled fraud or legitimate, and their amounts
/// in the base currency (hits without a rate count, but add no amount).
struct RuleScore {
  std::uint64_t hits = 0, fraud_hits = 0, legitimate_hits = 0;
  Decimal fraud_amount, legitimate_amount;  ///< fraud caught, legitimate money flagged
  /// Of the labelled hits, the share that was fraud; nothing without labelled hits.
  std::optional<double> precision() const;
  /// Of all labelled fraud, the share this rule caught; nothing without labelled fraud.
  std::optional<double> recall(std::uint64_t fraud_total) const;
};

/// What the service decided for an event, with the version of the rules that decided.
struct StoredDecision {
  std::string decision, rule_set_version;
};

class Backtest {
 public:
  Backtest(std::shared_ptr<const RuleSet> candidate, std::shared_ptr<const RuleSet> active);

  /// The runtime lists' entries and the suppressions, with when each was in force: each event is
  /// decided with those its batch saw (what it decided under, fed below), as the service decided it.
  void use_lists(RuntimeLists lists) { lists_ = std::move(lists); }

  /// The kinds of first-seen pair either rule file uses.
  std::vector<std::pair<KeyField, KeyField>> first_seen_kinds() const;

  /// A pair (`first`, `second`) of fields (`a`, `b`) the service recorded: by the event
  /// applied as `first_seq` (migrations/0011), or before 0011 (no first_seq) at `first_at`.
  void recorded_pair(KeyField a, KeyField b, const std::string& first, const std::string& second,
                     std::optional<std::int64_t> first_seq, events::Timestamp first_at);

  /// Replays one event. Events before the period only warm feature state up: `counted` false.
  /// `applied_seq` is where the service applied it (none before 0011): a recorded pair was new
  /// to it exactly when that event recorded it, whichever events the replay includes.
  /// `stored`, when the service recorded it under the active file's version, must equal the
  /// active file's decision: the report counts the events where it does not. `as_of` is what
  /// its batch decided the lists under (none before migration 0015).
  void feed(const events::Event& event, std::optional<bool> is_fraud, bool counted,
            const std::optional<StoredDecision>& stored = std::nullopt,
            std::optional<std::int64_t> applied_seq = std::nullopt,
            const std::optional<ListsAsOf>& as_of = std::nullopt);

  /// The report: per rule, candidate against active, with the money each caught or flagged
  /// and its hits a day over the period's events; then the decisions that change.
  void report(std::ostream& out) const;

  std::uint64_t events() const { return events_; }
  const std::map<std::string, RuleScore>& candidate_rules() const { return candidate_rules_; }
  const std::map<std::string, RuleScore>& active_rules() const { return active_rules_; }
  std::uint64_t decisions_changed() const;
  /// Events whose stored decision was made by the active file's version, and of those the
  /// ones the replay decided otherwise.
  std::uint64_t decisions_compared() const { return compared_; }
  std::uint64_t decisions_not_reproduced() const { return not_reproduced_; }

 private:
  /// Replays `event` through `engine` and scores its hits into `rules` and `flagged`.
  using PairKey = std::tuple<KeyField, KeyField, std::string, std::string>;
  Decision score(FeatureEngine& engine, std::set<PairKey>& seen, const events::Event& event,
                 std::optional<bool> is_fraud, bool counted, std::map<std::string, RuleScore>& rules,
                 RuleScore& flagged, std::optional<std::int64_t> applied_seq, const std::optional<ListsAsOf>& as_of);

  /// Whether each first_seen pair of `event` is new for `engine`: as the service recorded it,
  /// else (a kind the service does not record, an event from before 0011) by what this
  /// replay has `seen`.
  std::vector<bool> new_pairs(const FeatureEngine& engine, std::set<PairKey>& seen, const events::Event& event,
                              std::optional<std::int64_t> applied_seq) const;

  struct Recorded {
    std::optional<std::int64_t> first_seq;
    events::Timestamp first_at = 0;
  };
  std::map<PairKey, Recorded> recorded_;            ///< the service's pairs for the replayed keys
  std::set<PairKey> candidate_seen_, active_seen_;  ///< pairs each replay met

  FeatureEngine candidate_, active_;
  RuntimeLists lists_;
  std::map<std::string, RuleScore> candidate_rules_, active_rules_;
  RuleScore candidate_flagged_, active_flagged_;                    ///< decisions other than allow
  std::map<std::pair<Decision, Decision>, std::uint64_t> changes_;  ///< (active, candidate) where they differ
  std::uint64_t events_ = 0, warmup_events_ = 0, fraud_total_ = 0, legitimate_total_ = 0;
  std::uint64_t compared_ = 0, not_reproduced_ = 0;
  events::Timestamp first_at_ = 0, last_at_ = 0;  ///< the counted events' event-time span
  std::vector<std::string> not_reproduced_ids_;   ///< the first few, for the report
};

}  // namespace fraud::rules
