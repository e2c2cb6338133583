#include "store/retention.h"

#include "store/dedup_gate.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <set>

#include "events/time.h"

namespace fraud::store {

namespace {

constexpr events::Timestamp kDay = 86'400'000'000LL;
constexpr const char* kDayPartitioned = "transactions";

/// "20261127" for the UTC day starting at `day`.
std::string day_suffix(events::Timestamp day) {
  auto text = events::format_rfc3339(day);  // 2026-11-27T00:00:00Z
  return text.substr(0, 4) + text.substr(5, 2) + text.substr(8, 2);
}

std::string timestamp_literal(events::Timestamp t) { return "'" + events::format_rfc3339(t) + "'"; }

/// The days (their first instants) that have a partition of `table`, from the names.
std::set<events::Timestamp> partitioned_days(pqxx::work& tx, const std::string& table) {
  std::set<events::Timestamp> days;
  auto rows = tx.exec_params(
      "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      "WHERE i.inhparent = $1::regclass AND c.relname ~ '_p[0-9]{8}$'",
      table);
  for (const auto& row : rows) {
    auto name = row[0].as<std::string>();
    auto digits = name.substr(name.size() - 8);
    auto day = events::parse_rfc3339(digits.substr(0, 4) + "-" + digits.substr(4, 2) + "-" + digits.substr(6, 2) +
                                     "T00:00:00Z");
    if (day) days.insert(*day);
  }
  return days;
}

/// Days in [from, to) with rows in the default partition.
std::set<events::Timestamp> default_days(pqxx::work& tx, const std::string& table, events::Timestamp from,
                                         events::Timestamp to) {
  std::set<events::Timestamp> days;
  auto rows = tx.exec(
      "SELECT DISTINCT (extract(epoch FROM date_trunc('day', occurred_at AT TIME ZONE 'UTC')) * 1000000)::bigint "
      "FROM " +
      table + "_default WHERE occurred_at >= " + timestamp_literal(from) + " AND occurred_at < " +
      timestamp_literal(to));
  for (const auto& row : rows) days.insert(row[0].as<events::Timestamp>());
  return days;
}

/// Creates the day's partition. Rows of that day waiting in the default partition are moved
/// into it first: PostgreSQL refuses a new partition whose range the default still holds.
void create_day(pqxx::work& tx, const std::string& table, events::Timestamp day, PartitionReport& report) {
  auto name = table + "_p" + day_suffix(day);
  auto range = "occurred_at >= " + timestamp_literal(day) + " AND occurred_at < " + timestamp_literal(day + kDay);
  tx.exec0("CREATE TABLE " + name + " (LIKE " + table + " INCLUDING DEFAULTS)");
  auto moved = tx.exec0("WITH moved AS (DELETE FROM " + table + "_default WHERE " + range +
                        " RETURNING *) INSERT INTO " + name + " SELECT * FROM moved");
  report.rows_moved += static_cast<std::int64_t>(moved.affected_rows());
  tx.exec0("ALTER TABLE " + table + " ATTACH PARTITION " + name + " FOR VALUES FROM (" + timestamp_literal(day) +
           ") TO (" + timestamp_literal(day + kDay) + ")");
  report.created.push_back(name);
}

void maintain(pqxx::connection& c, const std::string& table, const RetentionPolicy& policy, events::Timestamp now,
              PartitionReport& report) {
  pqxx::work tx(c);
  // Behind a transaction that holds the table (a batch frozen mid-commit, a long backtest
  // holding a partition to drop) this would queue, and every batch of every replica behind
  // it: give up after five seconds instead, with an error that says to run prune again.
  tx.exec0("SET LOCAL lock_timeout = '5s'");
  // Writers wait while the partitions change: a row routed to the default partition just
  // before its day's partition attaches would otherwise land on the wrong side of it.
  tx.exec0("LOCK TABLE " + table + " IN EXCLUSIVE MODE");
  auto today = retention_horizon(now, 0);
  auto end = today + (policy.days_ahead + 1) * kDay;
  auto horizon = policy.retention_days > 0 ? retention_horizon(now, policy.retention_days + 1) : events::Timestamp{0};
  auto existing = partitioned_days(tx, table);

  std::set<events::Timestamp> wanted = default_days(tx, table, horizon, end);
  auto first = policy.from > 0 ? std::max(retention_horizon(policy.from, 0), horizon) : today - kDay;
  for (auto day = std::min(first, today - kDay); day < end; day += kDay) wanted.insert(day);
  for (auto day : wanted)
    if (!existing.count(day)) create_day(tx, table, day, report);

  if (policy.retention_days > 0) {
    for (auto day : existing) {
      if (day + kDay > horizon) continue;
      auto name = table + "_p" + day_suffix(day);
      tx.exec0("DROP TABLE " + name);
      report.dropped.push_back(name);
    }
    auto expired = tx.exec0("DELETE FROM " + table + "_default WHERE occurred_at < " + timestamp_literal(horizon));
    report.rows_expired += static_cast<std::int64_t>(expired.affected_rows());
  }
  tx.commit();
}

/// Empties the older generation of dedup ids and makes it current, once the current one is
/// `retention_days` old. The exclusive gate waits for every batch in flight (each holds it
/// shared) and holds new ones back until the switch commits, so no two batches ever disagree
/// on which slot is current.
bool rotate_dedup_generation(pqxx::connection& c, std::int64_t retention_days, events::Timestamp now) {
  if (retention_days <= 0) return false;
  pqxx::work tx(c);
  // Behind a frozen batch the exclusive request would queue, and every new batch of every
  // replica behind it: give up after a while and rotate at the next prune instead.
  tx.exec0("SET LOCAL lock_timeout = '5s'");
  try {
    tx.exec(kDedupGateExclusive);
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() != "55P03") throw;
    return false;
  }
  auto row = tx.exec_params1(
      "SELECT current_slot, started_at <= $1::timestamptz - make_interval(days => $2) FROM dedup_generation",
      events::format_rfc3339(now), static_cast<int>(retention_days));
  if (!row[1].as<bool>()) return false;
  auto next = 1 - row[0].as<int>();
  tx.exec0("TRUNCATE processed_events_slot" + std::to_string(next));
  tx.exec_params0("UPDATE dedup_generation SET current_slot = $1, started_at = $2::timestamptz", next,
                  events::format_rfc3339(now));
  tx.commit();
  return true;
}

}  // namespace

events::Timestamp retention_horizon(events::Timestamp now, std::int64_t days) {
  auto midnight = now - ((now % kDay) + kDay) % kDay;
  return midnight - days * kDay;
}

PartitionReport maintain_partitions(const std::string& owner_url, const RetentionPolicy& policy,
                                    events::Timestamp now) {
  pqxx::connection c(owner_url);
  PartitionReport report;
  maintain(c, kDayPartitioned, policy, now, report);
  report.dedup_rotated = rotate_dedup_generation(c, policy.retention_days, now);
  return report;
}

}  // namespace fraud::store
