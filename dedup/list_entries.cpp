#include "dedup/list_entries.h"

namespace fraud::dedup {

rules::RuntimeLists read_list_entries(pqxx::transaction_base& tx) {
  rules::RuntimeLists lists;
  auto rows = tx.exec(
      "SELECT list_name, value, (extract(epoch FROM created_at) * 1000000)::bigint, "
      "(extract(epoch FROM expires_at) * 1000000)::bigint FROM fraud_list_entries");
  for (const auto& row : rows) {
    std::optional<events::Timestamp> until;
    if (!row[3].is_null()) until = row[3].as<events::Timestamp>();
    lists.add(row[0].c_str(), row[1].c_str(), row[2].as<events::Timestamp>(), until);
  }
  for (const auto& row : tx.exec("SELECT rule_id, account_id, (extract(epoch FROM created_at) * 1000000)::bigint, "
                                 "(extract(epoch FROM expires_at) * 1000000)::bigint FROM fraud_suppressions"))
    lists.suppress(row[0].c_str(), row[1].c_str(), row[2].as<events::Timestamp>(), row[3].as<events::Timestamp>());
  return lists;
}

const rules::RuntimeLists& ListSnapshot::refresh(pqxx::work& tx) {
  auto version = tx.exec1("SELECT version FROM fraud_list_version")[0].as<std::int64_t>();
  if (version != version_) {
    lists_ = read_list_entries(tx);
    version_ = version;
  }
  return lists_;
}

}  // namespace fraud::dedup
