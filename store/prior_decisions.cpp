#include "store/prior_decisions.h"

#include <map>

#include "postgres/array_literal.h"
#include "store/statements.h"

namespace fraud::store {
namespace {

// The applied copy's digest and first door, and its history row's decision. The history is
// found by its primary key: processed_events keeps the occurred_at it was applied with. A
// history row pruned before its identity was leaves the decision empty.
constexpr const char* kPriorDecisions = R"sql(
SELECT p.event_source, p.event_id, p.body_digest, p.topic, t.decision, t.score, t.rule_set_version
FROM unnest($1::text[], $2::text[]) AS w(s, i)
JOIN processed_events p ON p.event_source = w.s AND p.event_id = w.i
LEFT JOIN transactions t ON t.event_source = p.event_source AND t.event_id = p.event_id
                        AND t.occurred_at = p.occurred_at)sql";

// The live rules that fired for them, as their alerts recorded them.
constexpr const char* kPriorHits = R"sql(
SELECT a.event_source, a.event_id, a.rule_id, a.score, a.reason
FROM unnest($1::text[], $2::text[]) AS w(s, i)
JOIN fraud_alerts a ON a.event_source = w.s AND a.event_id = w.i
WHERE NOT a.shadow
ORDER BY a.alert_id)sql";

}  // namespace

std::vector<std::optional<PriorDecision>> read_prior_decisions(pqxx::work& tx,
                                                               std::span<const events::Event* const> events) {
  std::vector<std::optional<PriorDecision>> found(events.size());
  if (events.empty()) return found;
  postgres::ArrayLiteral sources, ids;
  std::map<std::string, std::vector<std::size_t>> wanted;  // by dedup_key: an id may be asked twice
  for (std::size_t i = 0; i < events.size(); ++i) {
    sources.add(events[i]->source), ids.add(events[i]->event_id);
    wanted[dedup_key(events[i]->source, events[i]->event_id)].push_back(i);
  }
  for (const auto& row : tx.exec_params(kPriorDecisions, sources.str(), ids.str())) {
    PriorDecision prior;
    if (!row[2].is_null()) prior.body_digest = row[2].as<std::int64_t>();
    prior.first_topic = row[3].c_str();
    if (!row[4].is_null()) prior.decision = row[4].c_str();
    if (!row[5].is_null()) prior.score = row[5].as<int>();
    if (!row[6].is_null()) prior.rule_set_version = row[6].c_str();
    for (auto i : wanted[dedup_key(row[0].c_str(), row[1].c_str())]) found[i] = prior;
  }
  for (const auto& row : tx.exec_params(kPriorHits, sources.str(), ids.str())) {
    rules::RuleHit hit{row[2].c_str(), row[3].as<int>(), false, row[4].c_str()};
    for (auto i : wanted[dedup_key(row[0].c_str(), row[1].c_str())])
      if (found[i]) found[i]->hits.push_back(hit);
  }
  return found;
}

}  // namespace fraud::store
