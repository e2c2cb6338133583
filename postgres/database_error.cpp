#include "postgres/database_error.h"

#include <pqxx/pqxx>

namespace fraud::postgres {
namespace {

// SQLSTATE classes and codes from PostgreSQL's errcodes appendix. The reason labels are a
// bounded set (metrics): named ones for what operators meet, the class for the rest.
DatabaseError from_sqlstate(const std::string& message, const std::string& state) {
  auto retry = [&](std::string reason) { return DatabaseError(message, false, std::move(reason)); };
  if (state.starts_with("22")) return {message, true, "record"};  // data exception: a value of the record
  if (state == "54000") return {message, true, "record"};         // program limit: e.g. a key too large to index
  if (state.starts_with("08")) return retry("connection");
  if (state == "40001") return retry("serialization");
  if (state == "40P01") return retry("deadlock");
  if (state.starts_with("57P")) return retry("shutdown");
  if (state == "57014") return retry("statement_timeout");
  if (state.starts_with("53")) return retry("resources");
  if (state == "55P03") return retry("lock_timeout");
  if (state == "42501") return retry("privilege");
  if (state.starts_with("58") || state.starts_with("XX")) return retry("system");
  if (state.size() >= 2) return retry("class_" + state.substr(0, 2));
  return retry("other");
}

// The error's SQLSTATE. libpqxx 6 leaves it empty for some types it throws (seen for
// insufficient_privilege), so those fall back to their class's code. An error with no code
// at all is never taken for a record's fault.
std::string sqlstate_of(const pqxx::sql_error& e) {
  if (!e.sqlstate().empty()) return e.sqlstate();
  if (dynamic_cast<const pqxx::insufficient_privilege*>(&e)) return "42501";
  if (dynamic_cast<const pqxx::disk_full*>(&e)) return "53100";
  if (dynamic_cast<const pqxx::out_of_memory*>(&e)) return "53200";
  if (dynamic_cast<const pqxx::insufficient_resources*>(&e)) return "53000";
  if (dynamic_cast<const pqxx::syntax_error*>(&e)) return "42000";
  if (dynamic_cast<const pqxx::integrity_constraint_violation*>(&e)) return "23000";
  if (dynamic_cast<const pqxx::feature_not_supported*>(&e)) return "0A000";
  return "";
}

// Rethrows the pqxx error being handled as a DatabaseError, by type and SQLSTATE.
[[noreturn]] void classify() {
  try {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    throw DatabaseError(e.what(), false, "in_doubt");
  } catch (const pqxx::broken_connection& e) {
    throw DatabaseError(e.what(), false, "connection");
  } catch (const pqxx::sql_error& e) {
    throw from_sqlstate(e.what(), sqlstate_of(e));
  } catch (const pqxx::transaction_rollback& e) {
    throw DatabaseError(e.what(), false, "serialization");
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
    if (connection_lost) throw DatabaseError(e.what(), false, "connection");
    classify();
  }
}

}  // namespace fraud::postgres
