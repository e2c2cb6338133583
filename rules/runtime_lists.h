#pragma once
// What analysts change at runtime (migrations/0014, 0015), as the rules see it: a value is on
// a list, and a rule is suppressed for an account, for the events that occurred from when the
// entry was made until it expired. Pure data: the batch transaction and the backtest load it
// (dedup/list_entries.h).

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "events/event.h"

namespace fraud::rules {

class RuntimeLists {
 public:
  /// `value` on `list` for events that occurred in [from, until) (until: none, for good).
  void add(std::string_view list, std::string_view value, events::Timestamp from,
           std::optional<events::Timestamp> until);
  /// Whether `value` was on `list` for an event that occurred at `at`.
  bool contains(std::string_view list, std::string_view value, events::Timestamp at) const;

  /// `rule` does not fire for `account`'s events that occurred in [from, until).
  void suppress(std::string_view rule, std::string_view account, events::Timestamp from, events::Timestamp until);

  /// A rule and when it was suppressed for one account.
  struct Suppression {
    std::string rule;
    events::Timestamp from, until;
  };
  /// The suppressions ever made for `account` (none: nullptr); one lookup per event, so a
  /// batch pays nothing per rule for the accounts nobody suppressed anything for.
  const std::vector<Suppression>* suppressions_of(const std::string& account) const;
  /// Whether one of `suppressions` covers `rule` for an event that occurred at `at`.
  static bool suppressed(const std::vector<Suppression>& suppressions, std::string_view rule, events::Timestamp at);

  /// List entries and suppressions held.
  std::size_t size() const { return lists_.size() + suppression_count_; }

 private:
  /// When each (name, value) pair was in force.
  class InForce {
   public:
    void add(std::string_view name, std::string_view value, events::Timestamp from,
             std::optional<events::Timestamp> until);
    bool at(std::string_view name, std::string_view value, events::Timestamp at) const;
    std::size_t size() const { return entries_; }

   private:
    struct Window {
      events::Timestamp from;
      std::optional<events::Timestamp> until;
    };
    std::unordered_map<std::string, std::vector<Window>> windows_;
    std::size_t entries_ = 0;
  };
  InForce lists_;
  std::unordered_map<std::string, std::vector<Suppression>> suppressions_;  ///< by account
  std::size_t suppression_count_ = 0;
};

}  // namespace fraud::rules
