#include "rules/runtime_lists.h"

namespace fraud::rules {
namespace {

std::string key(std::string_view list, std::string_view value) {
  std::string k = std::to_string(list.size());
  k += ':';
  k += list;
  k += value;
  return k;
}

}  // namespace

bool InForce::covers(events::Timestamp at, const std::optional<ListsAsOf>& as_of) const {
  if (as_of)
    return added_version <= as_of->version && (!ended_version || as_of->version < *ended_version) &&
           (!until || as_of->at < *until);
  return from <= at && (!until || at < *until) && (!ended_at || at < *ended_at);
}

namespace {

/// Replaces the element read from the same row as `item`, if any; whether it did.
template <typename Item, typename Of>
bool replace_row(std::vector<Item>& items, const Item& item, Of when_of) {
  auto row = when_of(item).row_id;
  if (row == 0) return false;
  for (auto& held : items)
    if (when_of(held).row_id == row) return held = item, true;
  return false;
}

}  // namespace

void RuntimeLists::add(std::string_view list, std::string_view value, const InForce& when) {
  auto& held = entries_[key(list, value)];
  if (replace_row(held, when, [](const InForce& w) -> const InForce& { return w; })) return;
  held.push_back(when);
  ++entry_count_;
}

bool RuntimeLists::contains(std::string_view list, std::string_view value, events::Timestamp at,
                            const std::optional<ListsAsOf>& as_of) const {
  auto it = entries_.find(key(list, value));
  if (it == entries_.end()) return false;
  for (const auto& when : it->second)
    if (when.covers(at, as_of)) return true;
  return false;
}

void RuntimeLists::suppress(std::string_view rule, std::string_view account, const InForce& when) {
  auto& held = suppressions_[std::string(account)];
  Suppression suppression{std::string(rule), when};
  if (replace_row(held, suppression, [](const Suppression& s) -> const InForce& { return s.when; })) return;
  held.push_back(std::move(suppression));
  ++suppression_count_;
}

const std::vector<RuntimeLists::Suppression>* RuntimeLists::suppressions_of(const std::string& account) const {
  if (suppressions_.empty()) return nullptr;
  auto it = suppressions_.find(account);
  return it == suppressions_.end() ? nullptr : &it->second;
}

bool RuntimeLists::suppressed(const std::vector<Suppression>& suppressions, std::string_view rule, events::Timestamp at,
                              const std::optional<ListsAsOf>& as_of) {
  for (const auto& s : suppressions)
    if (s.rule == rule && s.when.covers(at, as_of)) return true;
  return false;
}

}  // namespace fraud::rules
