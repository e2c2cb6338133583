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
  suppressions_[std::string(account)].push_back({std::string(rule), from, until});
  ++suppression_count_;
}

const std::vector<RuntimeLists::Suppression>* RuntimeLists::suppressions_of(const std::string& account) const {
  if (suppressions_.empty()) return nullptr;
  auto it = suppressions_.find(account);
  return it == suppressions_.end() ? nullptr : &it->second;
}

bool RuntimeLists::suppressed(const std::vector<Suppression>& suppressions, std::string_view rule,
                              events::Timestamp at) {
  for (const auto& s : suppressions)
    if (s.rule == rule && s.from <= at && at < s.until) return true;
  return false;
}

}  // namespace fraud::rules
