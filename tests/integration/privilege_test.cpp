// Least privilege (migrations/0004_least_privilege.sql): the service's role writes its rows
// and can do nothing else. Every other integration test runs the service as this role, which
// shows the grants are enough; this one shows they are no more than that.
#include <doctest/doctest.h>

#include "tests/integration/support.h"

using namespace fraud::testing;

namespace {

/// "ok", "denied" (PostgreSQL's "permission denied" or "must be owner"), or another error.
std::string outcome_as_service(const TestDatabase& db, const std::string& sql) {
  pqxx::connection c(db.service_url());
  try {
    pqxx::nontransaction(c).exec(sql);
    return "ok";
  } catch (const pqxx::sql_error& e) {
    std::string message = e.what();
    bool denied = message.find("permission denied") != std::string::npos ||
                  message.find("must be owner") != std::string::npos;
    return denied ? "denied" : message;
  }
}

}  // namespace

TEST_CASE("the service's role cannot drop, truncate, alter or create tables, nor delete or rewrite history") {
  TestDatabase db(Services::from_environment());
  for (const char* sql : {"DROP TABLE processed_events", "DROP TABLE fraud_alerts", "DROP TABLE outbox",
                          "TRUNCATE processed_events", "TRUNCATE consumer_offsets", "TRUNCATE transactions",
                          "ALTER TABLE fraud_alerts ADD COLUMN note text", "CREATE TABLE stash (x int)",
                          "DELETE FROM processed_events", "DELETE FROM consumer_offsets",
                          "UPDATE fraud_alerts SET decision = 'allow'", "UPDATE transactions SET amount_minor = 0",
                          "DELETE FROM outbox", "SELECT * FROM outbox", "INSERT INTO fraud_labels VALUES ('t', false)",
                          "DROP TABLE schema_migrations"}) {
    CAPTURE(std::string(sql));
    CHECK(outcome_as_service(db, sql) == "denied");
  }
  // What it needs, it has (the other integration tests exercise every statement for real).
  CHECK(outcome_as_service(db, "SELECT count(*) FROM processed_events") == "ok");
  CHECK(db.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = 'fraud_consumer_test'") ==
        0);
}
