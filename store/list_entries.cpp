#include "store/list_entries.h"

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

rules::RuntimeLists read_list_entries(pqxx::transaction_base& tx) {
  rules::RuntimeLists lists;
  for (const auto& row :
       tx.exec(std::string("SELECT list_name, value, ") + kInForceColumns + " FROM fraud_list_entries"))
    lists.add(row[0].c_str(), row[1].c_str(), in_force(row, 2));
  for (const auto& row :
       tx.exec(std::string("SELECT rule_id, account_id, ") + kInForceColumns + " FROM fraud_suppressions"))
    lists.suppress(row[0].c_str(), row[1].c_str(), in_force(row, 2));
  return lists;
}

const rules::RuntimeLists& ListSnapshot::refresh(pqxx::work& tx) {
  // now(): the transaction's start, by the database's clock; natural expiries count against it.
  auto row = tx.exec1("SELECT version, (extract(epoch FROM now()) * 1000000)::bigint FROM fraud_list_version");
  auto version = row[0].as<std::int64_t>();
  // Entries read after the version may hold a change committed since; the version each is
  // added and ended in keeps it out of this batch's decisions.
  if (version != version_) lists_ = read_list_entries(tx);
  version_ = version;
  as_of_ = {version, row[1].as<events::Timestamp>()};
  return lists_;
}

}  // namespace fraud::store
