#pragma once
// Reading the stored transaction history back for backtests, in the order the service
// applied it (migrations/0011), with what the service decided.

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "events/event.h"
#include "rules/rule_set.h"
#include "rules/runtime_lists.h"

namespace fraud::store {

/// A stored event, its fraud label when it has one (transaction_labels: a case's first), the decision the
/// service made for it with the version of the rules that made it (NULL before 0010), and
/// where it was applied (NULL before 0011).
struct LabelledEvent {
  events::Event event;
  std::optional<bool> is_fraud;
  std::optional<std::string> decision, rule_set_version;
  std::optional<std::int64_t> applied_seq;
  std::optional<rules::ListsAsOf> lists_as_of;  ///< what its batch decided the lists under (0015)
};

/// The column of `transactions` that holds `field`: the history's index for that key.
std::string history_column(rules::KeyField field);

/// The name first_seen_pairs.pair_kind gives pairs of fields `a` and `b`.
std::string pair_kind_name(rules::KeyField a, rules::KeyField b);

/// A query of the pairs of fields `a` and `b` in the history's events (alias t) that meet
/// `condition`, each with the first event that had it in the order the service applied them
/// (migrations/0011; rows from before it first, by event time): columns a, b, occurred_at,
/// applied_seq. What a batch claiming every pair would have recorded in first_seen_pairs.
std::string first_pairs_in_history(rules::KeyField a, rules::KeyField b, const std::string& condition);

/// A pair the service recorded: by the event applied as `first_seq`, or (before 0011, no
/// first_seq) at `first_at`.
struct RecordedPair {
  rules::KeyField a, b;
  std::string first, second;
  std::optional<std::int64_t> first_seq;
  events::Timestamp first_at;
};

/// What a replay reads, in one snapshot.
struct StoredHistory {
  /// Called first, when set, with every runtime list entry and suppression and when each was in force.
  std::function<void(rules::RuntimeLists)> lists;
  /// The kinds of first-seen pair the replay's rules use.
  std::vector<std::pair<rules::KeyField, rules::KeyField>> pair_kinds;
  /// Called first, for every such pair whose first member is a key of a replayed event (a
  /// pair may come twice: the later call is the one that holds).
  std::function<void(const RecordedPair&)> pair_recorded;
  /// Then for every stored event with since <= occurred_at < until (microseconds since the
  /// epoch), in the order the service applied them (rows from before migration 0011 first, by
  /// event time), streaming through a cursor so memory stays flat.
  std::function<void(const LabelledEvent&)> event;
};

/// Replays the stored history to `visit`. Read-only.
void replay_stored_history(const std::string& postgres_url, events::Timestamp since, events::Timestamp until,
                           const StoredHistory& visit);

}  // namespace fraud::store
