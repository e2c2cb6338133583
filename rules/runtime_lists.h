#pragma once
// The entries of the lists analysts change at runtime (migrations/0014), as the rules see
// them: a value is on a list for the events that occurred from when it was added until it
// expired. Pure data: the batch transaction and the backtest load it (dedup/list_entries.h).

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
  std::size_t size() const { return entries_; }

 private:
  struct Window {
    events::Timestamp from;
    std::optional<events::Timestamp> until;
  };
  /// Keyed by the list's name's length, the name and the value: no two pairs share a key.
  static std::string key(std::string_view list, std::string_view value);
  std::unordered_map<std::string, std::vector<Window>> windows_;
  std::size_t entries_ = 0;
};

}  // namespace fraud::rules
