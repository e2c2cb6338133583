#include "rules/runtime_lists.h"

namespace fraud::rules {

std::string RuntimeLists::key(std::string_view list, std::string_view value) {
  std::string k = std::to_string(list.size());
  k += ':';
  k += list;
  k += value;
  return k;
}

void RuntimeLists::add(std::string_view list, std::string_view value, events::Timestamp from,
                       std::optional<events::Timestamp> until) {
  windows_[key(list, value)].push_back({from, until});
  ++entries_;
}

bool RuntimeLists::contains(std::string_view list, std::string_view value, events::Timestamp at) const {
  auto it = windows_.find(key(list, value));
  if (it == windows_.end()) return false;
  for (const auto& w : it->second)
    if (w.from <= at && (!w.until || at < *w.until)) return true;
  return false;
}

}  // namespace fraud::rules
