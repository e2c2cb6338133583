#include "tests/support/checks.h"

#include <doctest/doctest.h>

#include <map>
#include <set>

#include "tests/support/kafka.h"

namespace fraud::testing {

std::string json_field(const std::string& json, const std::string& field) {
  auto at = json.find("\"" + field + "\"");
  if (at == std::string::npos) return "";
  at = json.find_first_not_of(" :", at + field.size() + 2);  // `"f":"v"` and `"f" : "v"` alike
  if (at == std::string::npos || json[at] != '"') return "";
  return json.substr(at + 1, json.find('"', at + 1) - at - 1);
}

bool offsets_at_end(TestDatabase& db, const Services& s, const std::string& topic, int partitions) {
  auto highs = high_watermarks(s.bootstrap_servers, topic, partitions);
  if (highs.size() != static_cast<size_t>(partitions)) return false;
  for (auto [partition, high] : highs) {
    auto stored = db.count("SELECT coalesce(max(next_offset), 0) FROM consumer_offsets WHERE topic = '" + topic +
                           "' AND partition = " + std::to_string(partition));
    if (stored != high) return false;
  }
  return true;
}

void check_applied_exactly_once(TestDatabase& db, const Services& s, const std::string& topic, int partitions) {
  std::map<std::string, std::pair<std::int32_t, std::int64_t>> first_delivery;
  std::set<std::pair<std::int32_t, std::int64_t>> poison;
  for (const auto& r : read_topic(s.bootstrap_servers, topic, partitions)) {
    auto id = json_field(r.value, "event_id");
    if (r.value.empty() || r.value.back() != '}') poison.insert({r.partition, r.offset});
    else first_delivery.try_emplace(id, r.partition, r.offset);
  }
  auto rows = db.query("SELECT event_id, partition, \"offset\" FROM processed_events WHERE topic = '" + topic + "'");
  CHECK(rows.size() == first_delivery.size());
  std::size_t misplaced = 0;
  for (const auto& row : rows) {
    auto it = first_delivery.find(row[0].as<std::string>());
    if (it == first_delivery.end() ||
        it->second != std::make_pair(row[1].as<std::int32_t>(), row[2].as<std::int64_t>()))
      ++misplaced;
  }
  CHECK_MESSAGE(misplaced == 0, misplaced << " events applied at other than their first delivery");
  CHECK(static_cast<std::size_t>(db.count("SELECT count(*) FROM rejected_events WHERE topic = '" + topic + "'")) ==
        poison.size());
  CHECK(offsets_at_end(db, s, topic, partitions));
}

std::int64_t miscounted_alerts(TestDatabase& db, const std::string& join) {
  return db.count(
      "SELECT count(*) FROM (SELECT a.reason, rank() OVER (PARTITION BY t.account_id ORDER BY t.occurred_at) AS n "
      "FROM fraud_alerts a JOIN transactions t USING (event_source, event_id) " +
      join + ") x WHERE x.reason <> 'tx_count_1h (' || x.n || ') >= 1'");
}

std::int64_t miscased_accounts(TestDatabase& db) {
  return db.count(R"sql(
    WITH flagged AS (
      SELECT account_id, count(*) AS n FROM transactions WHERE decision IN ('review', 'block') GROUP BY account_id
    ), cased AS (
      SELECT c.account_id, sum(c.event_count) AS counted, count(*) AS cases,
             sum((SELECT count(*) FROM fraud_case_events e WHERE e.case_id = c.case_id)) AS linked
      FROM fraud_cases c GROUP BY c.account_id
    )
    SELECT count(*) FROM flagged f FULL JOIN cased c USING (account_id)
    WHERE f.n IS DISTINCT FROM c.counted OR f.n IS DISTINCT FROM c.linked OR c.cases <> 1)sql");
}

bool a_session_waits_on_a_lock(TestDatabase& db) {
  return db.count(
             "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
             "wait_event_type = 'Lock'") == 1;
}

}  // namespace fraud::testing
