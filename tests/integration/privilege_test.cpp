// Least privilege (migrations/0004_least_privilege.sql): the service's role writes its rows
// and can do nothing else. Every other integration test runs the service as this role, which
// shows the grants are enough; this one shows they are no more than that, and that secrets
// handed to the service do not leak into what it shows operators.
#include <doctest/doctest.h>
#include <signal.h>

#include <cstdio>

#include "tests/integration/support.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

/// What `sql` does on `url`, as `role` when one is given: "ok", "denied" (PostgreSQL's
/// "permission denied" or "must be owner"), or another error.
std::string outcome(const std::string& url, const std::string& sql, const std::string& role = "") {
  pqxx::connection c(url);
  try {
    pqxx::work tx(c);
    if (!role.empty()) tx.exec0("SET LOCAL ROLE " + tx.quote_name(role));
    tx.exec(sql);
    tx.commit();
    return "ok";
  } catch (const pqxx::sql_error& e) {
    std::string message = e.what();
    bool denied =
        message.find("permission denied") != std::string::npos || message.find("must be owner") != std::string::npos;
    return denied ? "denied" : message;
  }
}

std::string outcome_as_service(const TestDatabase& db, const std::string& sql) {
  return outcome(db.service_url(), sql);
}

}  // namespace

TEST_CASE("the service's role cannot drop, truncate, alter or create tables, nor delete or rewrite history") {
  TestDatabase db(Services::from_environment());
  for (const char* sql :
       {"DROP TABLE processed_events", "DROP TABLE fraud_alerts", "DROP TABLE outbox", "TRUNCATE processed_events",
        "TRUNCATE consumer_offsets", "TRUNCATE transactions", "ALTER TABLE fraud_alerts ADD COLUMN note text",
        "CREATE TABLE stash (x int)", "DELETE FROM processed_events", "DELETE FROM consumer_offsets",
        "UPDATE fraud_alerts SET decision = 'allow'", "UPDATE transactions SET amount_minor = 0", "DELETE FROM outbox",
        "SELECT * FROM outbox", "INSERT INTO fraud_labels VALUES ('t', false)", "DROP TABLE schema_migrations",
        "CREATE TEMPORARY TABLE stash (x int)"}) {
    CAPTURE(std::string(sql));
    CHECK(outcome_as_service(db, sql) == "denied");
  }
  // What it needs, it has (the other integration tests exercise every statement for real).
  CHECK(outcome_as_service(db, "SELECT count(*) FROM processed_events") == "ok");
  CHECK(db.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = 'fraud_consumer_test'") ==
        0);
}

TEST_CASE("secrets given to a replica appear neither in its logs nor in its metrics") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions");
  create_topic(services.bootstrap_servers, topic, 1);
  produce(services.bootstrap_servers, topic, {transaction_event(1, "10.00")});
  // The local server trusts loopback, so the password is accepted and ignored; the Kafka
  // secret is a property librdkafka keeps but does not use without SASL.
  const std::string password = "pg-secret-7f3a", kafka_secret = "kafka-secret-91c2";
  auto url = db.service_url();
  url.insert(url.find('@'), ":" + password);
  auto port = free_port();
  auto log = "/tmp/" + unique_name("secrets") + ".log";
  ChildProcess replica({FRAUD_CONSUMER_BINARY, "run"},
                       replica_environment(services, url, topic, unique_name("fraud"),
                                           {{"FRAUD_KAFKA_PROPERTIES_SASL_PASSWORD", kafka_secret},
                                            {"FRAUD_METRICS_LISTEN", "127.0.0.1:" + std::to_string(port)},
                                            {"FRAUD_LOG_LEVEL", "debug"}}),
                       log);
  REQUIRE(wait_until(60s, [&] { return offsets_at_end(db, services, topic, 1); }));
  auto metrics = http_get(port, "/metrics");
  REQUIRE(metrics);
  CHECK(replica.stop(SIGTERM, 30s) == 0);
  auto logged = read_file(log);
  CHECK(logged.find("consumer started") != std::string::npos);  // the log was written
  for (const auto& secret : {password, kafka_secret}) {
    CHECK(logged.find(secret) == std::string::npos);
    CHECK(metrics->find(secret) == std::string::npos);
  }
  std::remove(log.c_str());
}

TEST_CASE("secrets stay out of the logs when the database cannot be reached or refuses the connection") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions");
  create_topic(services.bootstrap_servers, topic, 1);
  const std::string password = "pg-secret-e4b1";
  auto good = db.service_url();
  auto with_password = [&](std::string url) { return url.insert(url.find('@'), ":" + password); };
  auto unreachable = with_password(good);
  unreachable.replace(unreachable.rfind(':'), unreachable.rfind('/') - unreachable.rfind(':'),
                      ":1");  // nothing listens
  auto no_such_database = with_password(good.substr(0, good.rfind('/')) + "/no_such_database_e4b1");
  for (const auto& url : {unreachable, no_such_database}) {
    CAPTURE(url.substr(url.rfind('@')));
    auto log = "/tmp/" + unique_name("secrets") + ".log";
    {
      ChildProcess replica(
          {FRAUD_CONSUMER_BINARY, "run"},
          replica_environment(services, url, topic, unique_name("fraud"), {{"FRAUD_LOG_LEVEL", "debug"}}), log);
      CHECK(wait_until(60s, [&] { return read_file(log).find("claim failed") != std::string::npos; }));
      replica.stop(SIGTERM, 30s);
    }
    ChildProcess migrate({FRAUD_CONSUMER_BINARY, "migrate"}, {{"FRAUD_POSTGRES_URL", url}}, log);
    CHECK(wait_until(60s, [&] { return !migrate.running(); }));
    auto logged = read_file(log);
    CHECK(logged.find("claim failed") != std::string::npos);
    CHECK(logged.find(password) == std::string::npos);
    std::remove(log.c_str());
  }
}

TEST_CASE("the service's role cannot forge an analyst's close: it inserts only an open case's own columns") {
  TestDatabase db(Services::from_environment());
  for (const char* sql :
       {"INSERT INTO fraud_cases (account_id, state, decision, event_count, last_event_at, disposition, closed_by, "
        "closed_at) VALUES ('acc-1', 'closed', 'block', 1, now(), 'legitimate', 'alice', now())",
        "INSERT INTO fraud_cases (account_id, decision, event_count, last_event_at, state, assignee) "
        "VALUES ('acc-1', 'block', 1, now(), 'assigned', 'alice')",
        "INSERT INTO fraud_cases (account_id, decision, event_count, last_event_at, opened_at) "
        "VALUES ('acc-1', 'block', 1, now(), now() - interval '9 days')",
        "UPDATE fraud_cases SET state = 'closed'"}) {
    CAPTURE(std::string(sql));
    CHECK(outcome_as_service(db, sql) == "denied");
  }
  CHECK(db.count("SELECT count(*) FROM fraud_cases") == 0);
  // What the batch inserts (store/cases.cpp), it may: an open case.
  CHECK(outcome_as_service(db,
                           "INSERT INTO fraud_cases (account_id, decision, event_count, last_event_at) "
                           "VALUES ('acc-1', 'block', 1, now())") == "ok");
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE state = 'open' AND disposition IS NULL") == 1);
  // Nor can it slip an event into a case without moving the case's version, which a close
  // checks: an event joins a case only with the case's own change (store/cases.cpp).
  auto slipped = outcome_as_service(db,
                                    "INSERT INTO fraud_case_events SELECT case_id, '', 'evt-9', 'txn-9', "
                                    "'review', 10, now() FROM fraud_cases");
  CHECK(slipped.find("an event joins a case only with a change to the case") != std::string::npos);
  CHECK(db.count("SELECT count(*) FROM fraud_case_events") == 0);
}

// A SECURITY DEFINER function runs with its owner's rights: owned by the superuser who
// migrated, one flaw in it would hand an analyst everything (migrations/0025).
TEST_CASE("the definer functions run as roles that cannot log in, read event bodies, delete or change tables") {
  TestDatabase db(Services::from_environment());
  const std::string definers =
      "FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner "
      "WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef";
  CHECK(db.count("SELECT count(*) " + definers) >= 10);
  CHECK(db.count("SELECT count(*) " + definers + " AND (r.rolsuper OR r.rolcanlogin)") == 0);
  for (const char* sql :
       {"SELECT body FROM transactions LIMIT 1", "SELECT * FROM processed_events LIMIT 1", "DELETE FROM fraud_cases",
        "DELETE FROM fraud_list_entries", "TRUNCATE fraud_suppressions", "ALTER TABLE fraud_cases ADD COLUMN note text",
        "CREATE TABLE stash (x int)", "UPDATE consumer_offsets SET epoch = 0",
        "UPDATE fraud_alerts SET decision = 'allow'",
        "INSERT INTO outbox (topic, payload, event_type) VALUES ('fraud-alerts', '', 'FraudAlertRaised')"}) {
    CAPTURE(std::string(sql));
    CHECK(outcome(db.url(), sql, "fraud_desk_owner") == "denied");
  }
  // What its functions do, it may (the console's tests call every one of them for real).
  CHECK(outcome(db.url(), "SELECT count(*) FROM fraud_cases", "fraud_desk_owner") == "ok");
}
