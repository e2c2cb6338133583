#include "store/first_seen_pairs.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <string>

#include "postgres/array_literal.h"
#include "postgres/database_error.h"
#include "store/batch_store.h"
#include "store/dedup_gate.h"
#include "store/history.h"
#include "store/statements.h"

namespace fraud::store {
namespace {

using Kind = std::pair<rules::KeyField, rules::KeyField>;

// Marks kinds maintained from the last applied batch on (migrations/0023), with the dedup
// gate held exclusively: no batch is in flight, so every batch up to that one has committed
// and every later one reads the mark. A kind recorded completely up to then is complete.
constexpr const char* kMarkMaintained = R"sql(
UPDATE first_seen_pair_kinds
SET maintained = true, recorded_from = w.last, complete = coalesce(recorded_through >= w.last, false)
FROM (SELECT coalesce(pg_sequence_last_value('applied_batches'), 0) AS last) w
WHERE pair_kind = ANY($1::text[]) AND NOT maintained)sql";

// The kind of first_seen_pairs.pair_kind `name` ("a|b", pair_kind_name()), if it names one.
std::optional<Kind> kind_named(std::string_view name) {
  auto bar = name.find('|');
  if (bar == std::string_view::npos) return std::nullopt;
  auto a = rules::key_field_named(name.substr(0, bar)), b = rules::key_field_named(name.substr(bar + 1));
  if (!a || !b) return std::nullopt;
  return Kind{*a, *b};
}

// One chunk of a kind's backfill: the pairs of the next 500 first keys after `after` among
// the history's events applied before `before` (an applied_seq), each recorded as the first
// event that had it in applied order. A pair recorded before `before` keeps its row; one a
// batch recorded since, which the history had earlier, moves back to that earlier event.
// Returns the chunk's last first key, or nothing when no key is left. The columns come from
// rules::kKeyFieldSpecs, never from input.
std::optional<std::string> backfill_chunk(pqxx::work& tx, const Kind& kind, const std::string& after,
                                          std::int64_t before) {
  auto a = "t." + history_column(kind.first), b = "t." + history_column(kind.second);
  auto sql = "WITH keys AS (SELECT DISTINCT " + a + " AS k FROM transactions t WHERE " + a + " > $2 AND " + b +
             " <> '' ORDER BY 1 LIMIT 500), "
             "pairs AS (" +
             first_pairs_in_history(kind.first, kind.second,
                                    a + " IN (SELECT k FROM keys) AND (t.applied_seq IS NULL OR t.applied_seq < $3)") +
             "), recorded AS ("
             "INSERT INTO first_seen_pairs AS p (pair_kind, first_key, second_key, first_at, first_seq) "
             "SELECT $1, a, b, occurred_at, applied_seq FROM pairs "
             "ON CONFLICT (pair_kind, first_key, second_key) DO UPDATE "
             "SET first_at = EXCLUDED.first_at, first_seq = EXCLUDED.first_seq "
             "WHERE p.first_seq >= $3 AND (EXCLUDED.first_seq IS NULL OR EXCLUDED.first_seq < p.first_seq)) "
             "SELECT max(k) FROM keys";
  auto last = tx.exec_params1(sql, pair_kind_name(kind.first, kind.second), after, before)[0];
  if (last.is_null()) return std::nullopt;
  return last.as<std::string>();
}

// Records the kind's pairs of every event applied before it was maintained that are not
// recorded yet, then marks it complete. Each chunk is a short transaction that holds the
// kind's row and moves its cursor on: a batch that meets one of the pairs waits for a chunk,
// not for the whole history; replicas registering the kind at once take turns; a restarted
// one goes on where the last chunk ended.
void backfill(pqxx::connection& connection, const Kind& kind, const std::function<void()>& progress) {
  auto name = pair_kind_name(kind.first, kind.second);
  for (;;) {
    pqxx::work tx(connection);
    auto row = tx.exec_params1(
        "SELECT complete, recorded_from, coalesce(backfilled_to, '') FROM first_seen_pair_kinds "
        "WHERE pair_kind = $1 FOR UPDATE",
        name);
    if (row[0].as<bool>()) return;
    auto before = (row[1].as<std::int64_t>() + 1) * kAppliedSeqPerBatch;
    auto last = backfill_chunk(tx, kind, row[2].as<std::string>(), before);
    if (last) tx.exec_params0("UPDATE first_seen_pair_kinds SET backfilled_to = $2 WHERE pair_kind = $1", name, *last);
    else tx.exec_params0("UPDATE first_seen_pair_kinds SET complete = true WHERE pair_kind = $1", name);
    tx.commit();
    if (!last) return;
    if (progress) progress();
  }
}

}  // namespace

void FirstSeenPairs::register_kinds(pqxx::connection& connection, const rules::FeatureEngine& engine,
                                    const std::function<void()>& progress) {
  std::vector<Kind> wanted;
  for (const auto& kind : engine.first_seen_kinds())
    if (!registered_.count(kind)) wanted.push_back(kind);
  if (wanted.empty()) return;
  // In name order, like every insert that can wait on another replica's row.
  std::sort(wanted.begin(), wanted.end(), [](const Kind& x, const Kind& y) {
    return pair_kind_name(x.first, x.second) < pair_kind_name(y.first, y.second);
  });
  postgres::ArrayLiteral names;
  for (const auto& kind : wanted) names.add(pair_kind_name(kind.first, kind.second));
  {
    pqxx::work tx(connection);
    tx.exec_params0("INSERT INTO first_seen_pair_kinds (pair_kind) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                    names.str());
    auto unmarked = tx.exec_params1(
        "SELECT count(*) FROM first_seen_pair_kinds WHERE pair_kind = ANY($1::text[]) AND NOT maintained", names.str());
    if (unmarked[0].as<int>() > 0) {
      // Waits for the batches in flight (and holds new ones back) for at most lock_timeout.
      tx.exec(kDedupGateExclusive);
      tx.exec_params0(kMarkMaintained, names.str());
    }
    tx.commit();
  }
  for (const auto& kind : wanted) {
    backfill(connection, kind, progress);  // nothing to do once complete
    registered_.insert(kind);
  }
}

std::vector<std::vector<bool>> FirstSeenPairs::claim(pqxx::work& tx, const rules::FeatureEngine& engine,
                                                     const std::vector<const events::Event*>& applied,
                                                     std::int64_t applied_batch,
                                                     const std::vector<std::string>& maintained) {
  sent_.clear();
  if (applied.empty()) return {};
  std::vector<Kind> kinds;
  for (const auto& name : maintained) {
    auto kind = kind_named(name);
    if (!kind)
      throw postgres::DatabaseError("first_seen_pair_kinds maintains \"" + name +
                                        "\", which this replica cannot record: run one version of fraud-consumer",
                                    false, "other");
    kinds.push_back(*kind);
  }
  for (const auto& kind : engine.first_seen_kinds())
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
      registered_.erase(kind);
      throw postgres::DatabaseError("the first_seen pairs of " + pair_kind_name(kind.first, kind.second) +
                                        " are not maintained (a database restored from before their registration?): "
                                        "registering them again",
                                    false, "other");
    }
  postgres::ArrayLiteral kind, first, second, at, place;
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

}  // namespace fraud::store
