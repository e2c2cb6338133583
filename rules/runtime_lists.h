#pragma once
// What analysts change at runtime (migrations/0014, 0015), as the rules see it: a value on a
// list, a rule suppressed for an account. Each change bumps one version, and each batch
// records what it decided under (transactions.lists_version and lists_at): an entry counts
// for a decision made under a version from the one that added it until the one that ended
// it, and before its natural expiry by the batch's clock. So an entry counts by when an event
// is decided, not how the producer stamped it: ending one, or its expiry, reaches every event
// applied afterwards, and a backtest replays each decision with exactly what its batch saw.
// Decisions recorded before 0015 (none given) count an entry by event time, from when it was
// made until it expired or ended. Pure data: the batch transaction and the backtest load it
// (store/list_entries.h).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "events/event.h"

namespace fraud::rules {

/// What a batch decided under: the lists' version it read, and its transaction's time by the
/// database's clock, against which natural expiries count.
struct ListsAsOf {
  std::int64_t version = 0;
  events::Timestamp at = 0;
};

/// When one entry or suppression counts.
struct InForce {
  events::Timestamp from = 0;                 ///< made (by the database's clock)
  std::optional<events::Timestamp> until;     ///< its natural expiry; none: until ended
  std::optional<events::Timestamp> ended_at;  ///< ended early
  std::int64_t added_version = 0;
  std::optional<std::int64_t> ended_version;
  std::int64_t row_id = 0;  ///< the row it was read from, so a later read of it replaces it (0: none)
  /// Whether it counts for an event that occurred at `at`, decided as of `as_of`.
  bool covers(events::Timestamp at, const std::optional<ListsAsOf>& as_of) const;
};

class RuntimeLists {
 public:
  /// `value` on `list`, as `when` says; in place of the copy of the same row read before.
  void add(std::string_view list, std::string_view value, const InForce& when);
  /// Whether `value` was on `list` for an event that occurred at `at`, decided as of `as_of`.
  bool contains(std::string_view list, std::string_view value, events::Timestamp at,
                const std::optional<ListsAsOf>& as_of) const;

  /// `rule` does not fire for `account`'s events, as `when` says; in place of the copy of the
  /// same row read before.
  void suppress(std::string_view rule, std::string_view account, const InForce& when);

  /// A rule and when it is suppressed for one account.
  struct Suppression {
    std::string rule;
    InForce when;
  };
  /// The suppressions ever made for `account` (none: nullptr); one lookup per event, so a
  /// batch pays nothing per rule for the accounts nobody suppressed anything for.
  const std::vector<Suppression>* suppressions_of(const std::string& account) const;
  /// Whether one of `suppressions` covers `rule` for an event that occurred at `at`, decided as of `as_of`.
  static bool suppressed(const std::vector<Suppression>& suppressions, std::string_view rule, events::Timestamp at,
                         const std::optional<ListsAsOf>& as_of);

  /// List entries and suppressions held.
  std::size_t size() const { return entry_count_ + suppression_count_; }

 private:
  /// Keyed by the list's name's length, the name and the value: no two pairs share a key.
  std::unordered_map<std::string, std::vector<InForce>> entries_;
  std::unordered_map<std::string, std::vector<Suppression>> suppressions_;  ///< by account
  std::size_t entry_count_ = 0, suppression_count_ = 0;
};

}  // namespace fraud::rules
