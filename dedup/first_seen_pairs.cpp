#include "dedup/first_seen_pairs.h"

#include <algorithm>
#include <functional>
#include <string>

#include "dedup/history.h"
#include "dedup/statements.h"

namespace fraud::dedup {
namespace {

/// The pairs recorded for every event, whatever the rules, so that a first_seen feature
/// added later starts from everything already seen; plus any a rule file declares.
std::vector<std::pair<rules::KeyField, rules::KeyField>> pair_kinds(const rules::RuleSet& rules) {
  using K = rules::KeyField;
  std::vector<std::pair<K, K>> kinds = {
      {K::account_id, K::counterparty_account}, {K::account_id, K::device_id}, {K::account_id, K::merchant_id}};
  for (const auto& f : rules.features())
    if (f.aggregate == rules::Aggregate::first_seen &&
        std::find(kinds.begin(), kinds.end(), std::make_pair(f.key, *f.paired_with)) == kinds.end())
      kinds.emplace_back(f.key, *f.paired_with);
  return kinds;
}

}  // namespace

std::vector<std::vector<bool>> FirstSeenPairs::claim(pqxx::work& tx, const rules::FeatureEngine& engine,
                                                     const std::vector<const events::Event*>& applied,
                                                     std::int64_t applied_batch) {
  sent_.clear();
  auto kinds = pair_kinds(engine.rules());
  ArrayLiteral kind, first, second, at, place;
  for (std::size_t k = 0; k < applied.size(); ++k)
    for (const auto& [ka, kb] : kinds) {
      const auto* e = applied[k];
      auto a = rules::key_of(*e, ka), b = rules::key_of(*e, kb);
      if (a.empty() || b.empty()) continue;
      auto name = pair_kind_name(ka, kb);
      auto hash = std::hash<std::string>{}(dedup_key(name, dedup_key(a, b)));
      if (known_.count(hash)) continue;
      sent_.push_back(hash);
      kind.add(name), first.add(a), second.add(b), at.add(e->occurred_at), place.add(static_cast<std::int64_t>(k));
    }
  std::unordered_set<std::string> fresh;
  if (!sent_.empty())
    for (const auto& row :
         tx.exec_prepared("pairs", kind.str(), first.str(), second.str(), at.str(), applied_batch, place.str()))
      fresh.insert(dedup_key(row[0].c_str(), dedup_key(row[1].c_str(), row[2].c_str())));
  std::vector<std::vector<bool>> flags;
  const auto& specs = engine.rules().features();
  for (const auto* e : applied) {
    auto& event_flags = flags.emplace_back();
    for (const auto& [index, a, b] : engine.pairs_of(*e)) {
      auto name = pair_kind_name(specs[index].key, *specs[index].paired_with);
      event_flags.push_back(fresh.erase(dedup_key(name, dedup_key(a, b))) > 0);
    }
  }
  return flags;
}

void FirstSeenPairs::committed() {
  constexpr std::size_t kMaxKnownPairs = 1'000'000;  // about 40 MB; past it, start again
  if (known_.size() + sent_.size() > kMaxKnownPairs) known_.clear();
  known_.insert(sent_.begin(), sent_.end());
  sent_.clear();
}

}  // namespace fraud::dedup
