#pragma once
// The runtime lists' entries and the rule suppressions (migrations/0014, 0015) read from the
// database: every one with when it was in force, for the batch transaction and for
// backtests. Internal to the store module.

#include <pqxx/pqxx>

#include <cstdint>
#include <string>
#include <vector>

#include "events/event.h"
#include "rules/rule_set.h"
#include "rules/runtime_lists.h"

namespace fraud::store {

/// Records, as the tables' owner, who may add to each of `policies`' lists and for how long
/// (migrations/0026): the rules file is the truth for the lists it names; others keep theirs.
void record_list_policies(const std::string& owner_url, const std::vector<rules::RuntimeListPolicy>& policies);

/// Every entry and suppression ever made (ended ones too: the backtest replays each decision
/// with what its batch saw). Analysts make them by hand, so there are few.
rules::RuntimeLists read_list_entries(pqxx::transaction_base& tx);

/// The lists as a replica's batches see them: the version is read in each batch's own
/// transaction, and what changed since the last read is read when it moved, so a change is
/// in force on every replica from its next batch, with no reload of the rules and no loss of
/// feature state.
class ListSnapshot {
 public:
  /// The version and the transaction's time (now(): by the database's clock, natural expiries
  /// count against it), to be read in the batch's transaction and given to refresh().
  static constexpr const char* kVersionQuery =
      "SELECT version, (extract(epoch FROM now()) * 1000000)::bigint FROM fraud_list_version";

  /// Takes `version` and `at` (what kVersionQuery read in `tx`), and reads the entries in `tx`
  /// when the version moved.
  const rules::RuntimeLists& refresh(pqxx::work& tx, std::int64_t version, events::Timestamp at);
  /// The same, reading the version in `tx` first.
  const rules::RuntimeLists& refresh(pqxx::work& tx) {
    auto row = tx.exec1(kVersionQuery);
    return refresh(tx, row[0].as<std::int64_t>(), row[1].as<events::Timestamp>());
  }
  /// What the last refresh read: what this batch decides under and records.
  const rules::ListsAsOf& as_of() const { return as_of_; }
  /// The entries and suppressions the last refresh read.
  std::size_t rows_read() const { return rows_read_; }

 private:
  std::int64_t version_ = -1;
  std::size_t rows_read_ = 0;
  rules::ListsAsOf as_of_;
  rules::RuntimeLists lists_;
};

}  // namespace fraud::store
