#include "dedup/history.h"

#include <limits>
#include <pqxx/pqxx>

#include "events/record.h"

namespace fraud::dedup {

std::string pair_kind_name(rules::KeyField a, rules::KeyField b) {
  return std::string(rules::to_string(a)) + "|" + rules::to_string(b);
}

void replay_stored_history(const std::string& postgres_url, events::Timestamp since, events::Timestamp until,
                           const StoredHistory& visit) {
  pqxx::connection c(postgres_url);
  // One snapshot for the pairs and the events, so the two agree.
  pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only> tx(c);
  auto period = "t.occurred_at >= timestamptz 'epoch' + $1 * interval '1 microsecond' "
                "AND t.occurred_at < timestamptz 'epoch' + $2 * interval '1 microsecond'";
  auto first = tx.exec_params1(std::string("SELECT min(t.applied_seq) FROM transactions t WHERE ") + period, since,
                               until);
  std::optional<std::int64_t> first_seq;
  if (!first[0].is_null()) first_seq = first[0].as<std::int64_t>();
  // A pair the service recorded before the first replayed event was not new to it. Rows from
  // before 0011 have no first_seq: those recorded before the period count as seen.
  for (const auto& [a, b] : visit.pair_kinds)
    for (const auto& row : tx.exec_params(
             "SELECT first_key, second_key FROM first_seen_pairs WHERE pair_kind = $1 AND "
             "(first_seq < $2 OR (first_seq IS NULL AND first_at < timestamptz 'epoch' + $3 * interval '1 microsecond'))",
             pair_kind_name(a, b), first_seq.value_or(std::numeric_limits<std::int64_t>::min()), since))
      visit.pair_seen_before(a, b, row[0].c_str(), row[1].c_str());
  tx.exec_params0(std::string("DECLARE history NO SCROLL CURSOR FOR "
                              "SELECT t.event_source, t.body, l.is_fraud, t.decision, t.rule_set_version "
                              "FROM transactions t LEFT JOIN fraud_labels l ON l.transaction_id = t.transaction_id "
                              "WHERE ") + period + " ORDER BY t.applied_seq NULLS FIRST, t.occurred_at, t.event_id",
                  since, until);
  events::Decoder decoder;
  for (;;) {
    auto rows = tx.exec("FETCH 10000 FROM history");
    if (rows.empty()) break;
    for (const auto& row : rows) {
      events::Record stored;
      stored.value = row[1].c_str();
      auto decoded = stored.decode(decoder);
      if (!decoded.event) continue;
      decoded.event->source = row[0].c_str();
      LabelledEvent item{std::move(*decoded.event), std::nullopt, std::nullopt, std::nullopt};
      if (!row[2].is_null()) item.is_fraud = row[2].as<bool>();
      if (!row[3].is_null()) item.decision = row[3].c_str();
      if (!row[4].is_null()) item.rule_set_version = row[4].c_str();
      visit.event(item);
    }
  }
}

}  // namespace fraud::dedup
