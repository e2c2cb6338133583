#include "store/retention.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <sstream>

#include "events/time.h"
#include "ops/log.h"
#include "postgres/connection.h"

namespace fraud::store {

namespace {

constexpr events::Timestamp kDay = 86'400'000'000LL;

/// "2026-11-27" for the UTC day starting at `day`.
std::string date_of(events::Timestamp day) { return events::format_rfc3339(day).substr(0, 10); }

std::vector<std::string> split_names(const std::string& names) {
  std::vector<std::string> all;
  std::istringstream stream(names);
  for (std::string name; std::getline(stream, name, ',');) all.push_back(name);
  return all;
}

/// The history's day partitions: which days is decided here, the DDL is
/// fraud_history_maintain()'s (migrations/0028), run as the tables' owner for whoever calls it.
void maintain_history(pqxx::connection& c, const RetentionPolicy& policy, events::Timestamp now,
                      PartitionReport& report) {
  auto today = retention_horizon(now, 0);
  auto end = today + (policy.days_ahead + 1) * kDay;
  auto horizon = policy.retention_days > 0 ? retention_horizon(now, policy.retention_days + 1) : events::Timestamp{0};
  auto first = policy.from > 0 ? std::max(retention_horizon(policy.from, 0), horizon) : today - kDay;
  pqxx::work tx(c);
  // Behind a transaction that holds the table (a batch frozen mid-commit, a long backtest
  // holding a partition to drop) this would queue, and every batch of every replica behind
  // it: give up after five seconds instead, with an error that says to run prune again.
  tx.exec0("SET LOCAL lock_timeout = '5s'");
  auto row = tx.exec_params1(
      "SELECT array_to_string(created, ','), array_to_string(dropped, ','), rows_moved, rows_expired "
      "FROM fraud_history_maintain($1::date, $2::date, NULLIF($3, '')::date)",
      date_of(std::min(first, today - kDay)), date_of(end), policy.retention_days > 0 ? date_of(horizon) : "");
  report.created = split_names(row[0].as<std::string>());
  report.dropped = split_names(row[1].as<std::string>());
  report.rows_moved = row[2].as<std::int64_t>();
  report.rows_expired = row[3].as<std::int64_t>();
  tx.commit();
}

/// The dedup ids' generations, rotated by fraud_dedup_rotate() (migrations/0028) once the
/// current one is `retention_days` old by the database's clock. Behind a frozen batch its
/// exclusive gate would queue, and every new batch of every replica behind it: it gives up
/// after a while, says so, and rotates at the next prune instead.
bool rotate_dedup_generation(pqxx::connection& c, std::int64_t retention_days) {
  if (retention_days <= 0) return false;
  pqxx::work tx(c);
  tx.exec0("SET LOCAL lock_timeout = '5s'");
  try {
    auto rotated = tx.exec_params1("SELECT fraud_dedup_rotate($1)", static_cast<int>(retention_days))[0].as<bool>();
    tx.commit();
    return rotated;
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() != "55P03") throw;
    ops::log::warn(
        "the dedup generations were not rotated: a transaction held them for 5 s; the next prune tries again", {});
    return false;
  }
}

}  // namespace

void record_retention(const std::string& owner_url, std::int64_t days) {
  auto opened = postgres::connect(owner_url);
  auto& c = *opened;
  pqxx::work tx(c);
  // A change is audited: a shorter retention lets prune forget sooner.
  tx.exec_params0(
      "WITH before AS (SELECT days FROM fraud_retention), "
      "changed AS (UPDATE fraud_retention SET days = $1, recorded_at = now() WHERE days <> $1 RETURNING days) "
      "INSERT INTO audit_log (actor, action, object, before, after, login) "
      "SELECT session_user, 'retention.record', 'retention', jsonb_build_object('days', b.days), "
      "jsonb_build_object('days', c.days), session_user FROM changed c, before b",
      static_cast<int>(days));
  tx.commit();
}

events::Timestamp retention_horizon(events::Timestamp now, std::int64_t days) {
  auto midnight = now - ((now % kDay) + kDay) % kDay;
  return midnight - days * kDay;
}

PartitionReport maintain_partitions(const std::string& url, const RetentionPolicy& policy, events::Timestamp now) {
  auto opened = postgres::connect(url);
  auto& c = *opened;
  PartitionReport report;
  maintain_history(c, policy, now, report);
  report.dedup_rotated = rotate_dedup_generation(c, policy.retention_days);
  return report;
}

}  // namespace fraud::store
