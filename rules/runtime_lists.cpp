#include "rules/runtime_lists.h"

namespace fraud::rules {
namespace {

/// The name's length, the name and the value: no two (name, value) pairs share a key.
std::string key(std::string_view name, std::string_view value) {
  std::string k = std::to_string(name.size());
  k += ':';
  k += name;
  k += value;
  return k;
}

}  // namespace

void RuntimeLists::InForce::add(std::string_view name, std::string_view value, events::Timestamp from,
                                std::optional<events::Timestamp> until) {
  windows_[key(name, value)].push_back({from, until});
  ++entries_;
}

bool RuntimeLists::InForce::at(std::string_view name, std::string_view value, events::Timestamp at) const {
  auto it = windows_.find(key(name, value));
  if (it == windows_.end()) return false;
  for (const auto& w : it->second)
    if (w.from <= at && (!w.until || at < *w.until)) return true;
  return false;
}

void RuntimeLists::add(std::string_view list, std::string_view value, events::Timestamp from,
                       std::optional<events::Timestamp> until) {
  lists_.add(list, value, from, until);
}

bool RuntimeLists::contains(std::string_view list, std::string_view value, events::Timestamp at) const {
  return lists_.at(list, value, at);
}

void RuntimeLists::suppress(std::string_view rule, std::string_view account, events::Timestamp from,
                            events::Timestamp until) {
  suppressions_.add(rule, account, from, until);
}

bool RuntimeLists::suppressed(std::string_view rule, std::string_view account, events::Timestamp at) const {
  return suppressions_.at(rule, account, at);
}

}  // namespace fraud::rules
