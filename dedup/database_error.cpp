#include "dedup/database_error.h"

#include <pqxx/pqxx>

namespace fraud::dedup {
namespace {

// SQLSTATE classes and codes from PostgreSQL's errcodes appendix.
DatabaseError from_sqlstate(const std::string& message, const std::string& state) {
  if (state.starts_with("08")) return {message, true, "connection"};
  if (state == "40001") return {message, true, "serialization"};
  if (state == "40P01") return {message, true, "deadlock"};
  if (state.starts_with("57P")) return {message, true, "shutdown"};
  if (state.starts_with("53")) return {message, true, "resources"};
  if (state == "55P03") return {message, true, "lock_timeout"};
  return {message, false, "sqlstate_" + state};
}

// Rethrows the pqxx error being handled as a DatabaseError, by type and SQLSTATE.
[[noreturn]] void classify() {
  try {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    throw DatabaseError(e.what(), true, "in_doubt");
  } catch (const pqxx::broken_connection& e) {
    throw DatabaseError(e.what(), true, "connection");
  } catch (const pqxx::sql_error& e) {
    throw from_sqlstate(e.what(), e.sqlstate());
  } catch (const pqxx::transaction_rollback& e) {
    throw DatabaseError(e.what(), true, "serialization");
  } catch (const pqxx::failure& e) {
    throw DatabaseError(e.what(), false, "other");
  }
}

}  // namespace

void rethrow_as_database_error(bool connection_lost) {
  try {
    throw;
  } catch (const DatabaseError&) {
    throw;
  } catch (const pqxx::failure& e) {
    if (connection_lost) throw DatabaseError(e.what(), true, "connection");
    classify();
  }
}

}  // namespace fraud::dedup
