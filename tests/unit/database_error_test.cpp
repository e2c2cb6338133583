// Which database failures may reject a record: only those a record's own values cause.
#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include "postgres/database_error.h"

using fraud::postgres::DatabaseError;

namespace {

template <typename Error>
DatabaseError classified(const Error& error) {
  try {
    try {
      throw error;
    } catch (...) {
      fraud::postgres::rethrow_as_database_error();
    }
  } catch (const DatabaseError& e) {
    return e;
  }
  FAIL("not classified");
  return DatabaseError("", false, "");
}

}  // namespace

TEST_CASE("only a data exception or a value past a limit is a record's fault") {
  CHECK(classified(pqxx::data_exception("invalid byte sequence", "", "22021")).record_fault);
  CHECK(classified(pqxx::sql_error("index row size exceeds maximum", "", "54000")).record_fault);
  for (const char* state : {"57014", "42501", "53100", "58030", "XX000", "40001", "40P01", "55P03", "42P01", "23505"}) {
    CAPTURE(state);
    CHECK_FALSE(classified(pqxx::sql_error("server said no", "", state)).record_fault);
  }
  CHECK_FALSE(classified(pqxx::broken_connection("gone")).record_fault);
  CHECK_FALSE(classified(pqxx::in_doubt_error("commit unknown")).record_fault);
  CHECK_FALSE(classified(pqxx::sql_error("no code at all")).record_fault);
}

TEST_CASE("a retried failure is labelled by a bounded reason, even when libpqxx drops the SQLSTATE") {
  CHECK(classified(pqxx::sql_error("cancelled", "", "57014")).reason == "statement_timeout");
  CHECK(classified(pqxx::insufficient_privilege("permission denied for table fraud_alerts")).reason == "privilege");
  CHECK(classified(pqxx::sql_error("internal", "", "XX000")).reason == "system");
  CHECK(classified(pqxx::sql_error("lock", "", "55P03")).reason == "lock_timeout");
  CHECK(classified(pqxx::sql_error("undefined table", "", "42P01")).reason == "class_42");
  CHECK(classified(pqxx::broken_connection("gone")).reason == "connection");
}
