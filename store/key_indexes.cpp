#include "store/key_indexes.h"

#include <algorithm>
#include <set>

#include "postgres/connection.h"
#include "store/history.h"
#include "store/migrations.h"

namespace fraud::store {
namespace {

// A key field's valid index on the history's parent table: first column the field's.
constexpr const char* kHasIndex = R"sql(
SELECT EXISTS (
  SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
  WHERE i.indrelid = 'transactions'::regclass AND a.attname = $1 AND i.indisvalid))sql";

// The history's partitions, and which of them has the parent index `$1` attached.
constexpr const char* kPartitions = R"sql(
SELECT c.relname,
       EXISTS (SELECT FROM pg_inherits ii JOIN pg_index i ON i.indexrelid = ii.inhrelid
               WHERE ii.inhparent = to_regclass($1) AND i.indrelid = c.oid) AS attached
FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
WHERE h.inhparent = 'transactions'::regclass)sql";

// Builds `field`'s index on every partition that lacks it and attaches each to the parent's;
// true once the parent's is valid (every partition attached).
bool build_once(pqxx::connection& c, rules::KeyField field) {
  auto column = history_column(field);
  auto parent = c.quote_name("transactions_by_" + column);
  auto definition = " (" + c.quote_name(column) + ", occurred_at) WHERE " + c.quote_name(column) + " IS NOT NULL";
  pqxx::nontransaction tx(c);
  // ONLY: an index of the parent alone, invalid until every partition's is attached. Any
  // partition created from now on (`store prune`) gets one as it attaches.
  tx.exec0("CREATE INDEX IF NOT EXISTS " + parent + " ON ONLY transactions" + definition);
  int attached = 0;
  for (const auto& row : tx.exec_params(kPartitions, parent)) {
    if (row[1].as<bool>()) continue;
    auto partition = row[0].as<std::string>();
    auto index = c.quote_name(partition + "_by_" + column);
    // Left invalid by a build that failed or was interrupted: it would never attach. (No
    // other build runs meanwhile: build_key_indexes holds the migrations' lock.)
    auto invalid = tx.exec_params1(
        "SELECT EXISTS (SELECT FROM pg_index WHERE indexrelid = to_regclass($1) AND NOT indisvalid)", index);
    if (invalid[0].as<bool>()) tx.exec0("DROP INDEX CONCURRENTLY " + index);
    tx.exec0("CREATE INDEX CONCURRENTLY IF NOT EXISTS " + index + " ON " + c.quote_name(partition) + definition);
    tx.exec0("ALTER INDEX " + parent + " ATTACH PARTITION " + index);
    ++attached;
  }
  if (has_key_index(tx, field)) return true;
  // Every partition attached and the parent still invalid: a partition its build counted
  // on was dropped (`store prune`) before it attached. PostgreSQL validates the parent only
  // as a partition's index attaches, so start it again (its partitions' indexes go with it).
  if (attached == 0) {
    tx.exec0("SET lock_timeout = '5s'");
    tx.exec0("DROP INDEX " + parent);
    tx.exec0("RESET lock_timeout");
  }
  return false;
}

}  // namespace

bool has_key_index(pqxx::transaction_base& tx, rules::KeyField field) {
  return tx.exec_params1(kHasIndex, history_column(field))[0].as<bool>();
}

std::vector<rules::KeyField> fields_read_by_key(const rules::FeatureEngine& engine) {
  std::set<rules::KeyField> fields(engine.key_fields().begin(), engine.key_fields().end());
  for (const auto& kind : engine.first_seen_kinds()) fields.insert(kind.first);
  return {fields.begin(), fields.end()};
}

std::vector<rules::KeyField> build_key_indexes(const std::string& owner_url,
                                               const std::vector<rules::KeyField>& fields) {
  auto opened = postgres::connect(owner_url);
  auto& c = *opened;
  std::vector<rules::KeyField> built;
  for (auto field : fields) {
    {
      pqxx::nontransaction tx(c);
      if (has_key_index(tx, field)) continue;
    }
    // A partition `store prune` made between the listing and the parent index has none: a
    // second pass builds it.
    bool valid = false;
    for (int pass = 0; pass < 3 && !valid; ++pass) valid = build_once(c, field);
    if (!valid)
      throw std::runtime_error("the history's index for " + std::string(rules::to_string(field)) +
                               " is still not valid after three passes: run migrate again");
    built.push_back(field);
  }
  return built;
}

std::vector<rules::KeyField> registered_key_fields(const std::string& postgres_url) {
  auto opened = postgres::connect(postgres_url);
  auto& c = *opened;
  pqxx::nontransaction tx(c);
  std::vector<rules::KeyField> fields;
  // The key fields, and the first fields of the first-seen kinds (a backfill reads by them).
  for (const auto& row : tx.exec("SELECT key_field FROM feature_key_fields WHERE maintained UNION "
                                 "SELECT split_part(pair_kind, '|', 1) FROM first_seen_pair_kinds WHERE maintained"))
    if (auto field = rules::key_field_named(row[0].c_str())) fields.push_back(*field);
  return fields;
}

}  // namespace fraud::store
