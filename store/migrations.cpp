#include "store/migrations.h"
#include "postgres/connection.h"

#include <pqxx/pqxx>

#include <stdexcept>

namespace fraud::store {
namespace {

void ensure_table(pqxx::connection& c) {
  pqxx::work tx(c);
  tx.exec0(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
  tx.commit();
}

// True when `m` already ran; throws when it ran with other text.
bool already_applied(pqxx::connection& c, const Migration& m) {
  pqxx::work tx(c);
  auto rows = tx.exec_params("SELECT checksum = md5($2) FROM schema_migrations WHERE name = $1", std::string(m.name),
                             std::string(m.sql));
  if (rows.empty()) return false;
  if (!rows[0][0].as<bool>())
    throw std::runtime_error("migration " + std::string(m.name) +
                             " changed after it was applied; add a new migration instead of editing it");
  return true;
}

// Roles are cluster-wide: a migration of another database on the same cluster may create a
// role this one creates too. The loser's transaction can then see the role's name as missing
// (its catalog cache is stale until the next transaction starts), so a migration that fails
// with "undefined object" or a transaction-rollback state runs once more in a fresh
// transaction. A genuine error fails the same way again, and that error is reported.
bool lost_a_race(const pqxx::sql_error& e) { return e.sqlstate() == "42704" || e.sqlstate().starts_with("40"); }

// From migration 0028 on the tables belong to fraud_owner, which cannot log in: every later
// migration runs as it, so what it makes belongs to it too, whoever migrates (a member, with
// INHERIT, as the key indexes and list policies `migrate` records after need).
bool owned_by_fraud_owner(pqxx::work& tx) {
  if (tx.exec("SELECT FROM schema_migrations WHERE name LIKE '0028\\_%'").empty()) return false;
  if (!tx.exec1("SELECT pg_has_role(session_user, 'fraud_owner', 'USAGE')")[0].as<bool>())
    throw std::runtime_error(
        "the migrating login is not a member of fraud_owner, which owns the tables (migrations/0028): have a DBA "
        "run GRANT fraud_owner TO " +
        tx.exec1("SELECT session_user")[0].as<std::string>());
  return true;
}

void apply(pqxx::connection& c, const Migration& m) {
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    pqxx::work tx(c);
    try {
      if (owned_by_fraud_owner(tx)) tx.exec0("SET LOCAL ROLE fraud_owner");
      tx.exec(std::string(m.sql));
    } catch (const pqxx::sql_error& e) {
      if (attempt < kAttempts && lost_a_race(e)) continue;
      throw std::runtime_error("migration " + std::string(m.name) + " failed: " + e.what());
    }
    tx.exec_params0("INSERT INTO schema_migrations (name, checksum) VALUES ($1, md5($2))", std::string(m.name),
                    std::string(m.sql));
    tx.commit();
    return;
  }
}

}  // namespace

int migrate(const std::string& postgres_url, std::span<const Migration> migrations,
            const std::function<void(std::string_view)>& on_applied) {
  auto opened = postgres::connect(postgres_url);
  auto& c = *opened;
  // Held by this session until the connection closes, on success or on error alike.
  pqxx::nontransaction(c).exec_params("SELECT pg_advisory_lock($1)", kMigrationLock);
  ensure_table(c);
  int applied = 0;
  for (const auto& m : migrations) {
    if (already_applied(c, m)) continue;
    apply(c, m);
    ++applied;
    if (on_applied) on_applied(m.name);
  }
  return applied;
}

}  // namespace fraud::store
