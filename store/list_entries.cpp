#include "store/list_entries.h"

#include <optional>
#include <string>

#include "postgres/array_literal.h"
#include "postgres/connection.h"

namespace fraud::store {
namespace {

// When each counts (rules::InForce), in the columns every entry and suppression has.
constexpr const char* kInForceColumns =
    "(extract(epoch FROM created_at) * 1000000)::bigint, (extract(epoch FROM expires_at) * 1000000)::bigint, "
    "(extract(epoch FROM ended_at) * 1000000)::bigint, added_version, ended_version";

rules::InForce in_force(const pqxx::row& row, int first) {
  rules::InForce when;
  when.from = row[first].as<events::Timestamp>();
  if (!row[first + 1].is_null()) when.until = row[first + 1].as<events::Timestamp>();
  if (!row[first + 2].is_null()) when.ended_at = row[first + 2].as<events::Timestamp>();
  when.added_version = row[first + 3].as<std::int64_t>();
  if (!row[first + 4].is_null()) when.ended_version = row[first + 4].as<std::int64_t>();
  return when;
}

}  // namespace

namespace {

// Every entry and suppression, or those added or ended after a version.
constexpr const char* kChangedAfter = " WHERE added_version > $1 OR ended_version > $1";

/// Reads the rows into `lists` (all, or those changed after `after`); how many it read.
std::size_t read_rows(pqxx::transaction_base& tx, rules::RuntimeLists& lists, std::optional<std::int64_t> after) {
  auto read = [&](const std::string& columns, const std::string& table) {
    auto sql = "SELECT " + columns + ", " + kInForceColumns + " FROM " + table;
    return after ? tx.exec_params(sql + kChangedAfter, *after) : tx.exec(sql);
  };
  auto with_row = [](const pqxx::row& row) {
    auto when = in_force(row, 3);
    when.row_id = row[0].as<std::int64_t>();
    return when;
  };
  auto entries = read("entry_id, list_name, value", "fraud_list_entries");
  for (const auto& row : entries) lists.add(row[1].c_str(), row[2].c_str(), with_row(row));
  auto suppressions = read("suppression_id, rule_id, account_id", "fraud_suppressions");
  for (const auto& row : suppressions) lists.suppress(row[1].c_str(), row[2].c_str(), with_row(row));
  return entries.size() + suppressions.size();
}

}  // namespace

rules::RuntimeLists read_list_entries(pqxx::transaction_base& tx) {
  rules::RuntimeLists lists;
  read_rows(tx, lists, std::nullopt);
  return lists;
}

const rules::RuntimeLists& ListSnapshot::refresh(pqxx::work& tx, std::int64_t version, events::Timestamp at) {
  // Every change bumps the version under the version row's lock, so changes commit in
  // version order: everything up to the version read last was read then, and only rows
  // added or ended after it are read now. Rows read may hold a change committed after this
  // batch read its version; the version each is added and ended in keeps it out of this
  // batch's decisions, and the next read replaces them. A version lower than the last (a
  // database restored, or failed over behind an address that kept the connection) reads
  // all again.
  rows_read_ = 0;
  if (version_ >= 0 && version > version_) {
    rows_read_ = read_rows(tx, lists_, version_);
    // A row deleted, or inserted without a version, by hand (the tables' owner can): the
    // counts differ, and everything is read again.
    auto held =
        tx.exec1("SELECT (SELECT count(*) FROM fraud_list_entries) + (SELECT count(*) FROM fraud_suppressions)");
    if (held[0].as<std::size_t>() != lists_.size()) version_ = -1;
  }
  if (version_ < 0 || version < version_) {
    rules::RuntimeLists all;  // swapped in once read whole: a failed read leaves the last lists
    rows_read_ = read_rows(tx, all, std::nullopt);
    lists_ = std::move(all);
  }
  version_ = version;
  as_of_ = {version, at};
  return lists_;
}

void record_list_policies(const std::string& owner_url, const std::vector<rules::RuntimeListPolicy>& policies) {
  if (policies.empty()) return;
  postgres::ArrayLiteral lists, writers, days;
  for (const auto& p : policies) {
    lists.add(p.list), writers.add(p.leads_only ? "lead" : "analyst");
    if (p.longest_days) days.add(std::int64_t{*p.longest_days});
    else days.add_null();
  }
  auto opened = postgres::connect(owner_url);
  auto& connection = *opened;
  pqxx::work tx(connection);
  // Who may write a list decides who may lower or raise decisions: each change is audited,
  // with what it was, under the login that made it (all CTEs read the same snapshot, so
  // `before` holds the policy as it was).
  tx.exec_params0(
      "WITH incoming AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) AS i (list_name, writer, "
      "longest_days)), "
      "before AS (SELECT p.list_name, p.writer, p.longest_days FROM fraud_list_policies p JOIN incoming USING "
      "(list_name)), "
      "changed AS (INSERT INTO fraud_list_policies (list_name, writer, longest_days) SELECT * FROM incoming "
      "ON CONFLICT (list_name) DO UPDATE SET writer = EXCLUDED.writer, longest_days = EXCLUDED.longest_days, "
      "recorded_at = now() "
      "WHERE (fraud_list_policies.writer, fraud_list_policies.longest_days) IS DISTINCT FROM "
      "(EXCLUDED.writer, EXCLUDED.longest_days) "
      "RETURNING list_name, writer, longest_days) "
      "INSERT INTO audit_log (actor, action, object, before, after, login) "
      "SELECT session_user, 'list.policy', 'list:' || c.list_name, "
      "(SELECT jsonb_build_object('writer', b.writer, 'longest_days', b.longest_days) FROM before b "
      "WHERE b.list_name = c.list_name), "
      "jsonb_build_object('writer', c.writer, 'longest_days', c.longest_days), session_user FROM changed c",
      lists.str(), writers.str(), days.str());
  tx.commit();
}

}  // namespace fraud::store
