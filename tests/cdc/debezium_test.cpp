// Debezium as the bank's relay: Kafka Connect in standalone mode runs Debezium's PostgreSQL
// connector with the outbox EventRouter over outbox tables in Debezium's default shape, once
// per converter setting a bank would use; a fraud-consumer replica consumes every routed
// topic. Rows are snapshotted, streamed, replayed after Connect is killed before its offset
// flush, and snapshotted again after its offsets are lost: every id must be applied once,
// with the amount and account its row holds. docs/DEBEZIUM.md is what this test runs.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <regex>

#include "tests/support/integration.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

/// One converter setting: its name (also its table's, topic's and slot's), the connector
/// properties that make it, and what its records look like on the topic (ECMAScript
/// patterns for the headers, as kcat prints them, and the value): so a property Connect
/// ignored cannot pass for the setting.
struct Setting {
  std::string name;
  std::vector<std::string> properties;
  std::string headers, value;
};

const std::vector<Setting>& settings() {
  constexpr auto kJson = "value.converter=org.apache.kafka.connect.json.JsonConverter";
  constexpr auto kJsonHeaders = "header.converter=org.apache.kafka.connect.json.JsonConverter";
  constexpr auto kTypeHeader = "transforms.outbox.table.fields.additional.placement=type:header:type";
  static const std::vector<Setting> all = {
      {"json", {kJson, "value.converter.schemas.enable=false"}, "(^|,)id=[0-9a-f]", R"(^"\{\\"kind\\": )"},
      {"json_schemas", {kJson, "value.converter.schemas.enable=true"}, "(^|,)id=[0-9a-f]", R"(^\{"schema":\{)"},
      {"json_expanded",
       {kJson, "value.converter.schemas.enable=false", "transforms.outbox.table.expand.json.payload=true"},
       "(^|,)id=[0-9a-f]",
       R"(^\{"kind":"purchase",)"},
      {"string",
       {"value.converter=org.apache.kafka.connect.storage.StringConverter"},
       "(^|,)id=[0-9a-f]",
       R"(^\{"kind": "purchase",)"},
      {"json_headers",
       {kJson, "value.converter.schemas.enable=false", kJsonHeaders, "header.converter.schemas.enable=false",
        kTypeHeader},
       R"((^|,)id="[0-9a-f-]+".*type="TransactionRecorded")",
       R"(^"\{)"},
      {"json_headers_schemas",
       {kJson, "value.converter.schemas.enable=false", kJsonHeaders, "header.converter.schemas.enable=true",
        kTypeHeader},
       R"((^|,)id=\{"schema":.*type=\{"schema":)",
       R"(^"\{)"},
  };
  return all;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  REQUIRE(out.good());
}

/// Kafka Connect in standalone mode with one Debezium connector per setting, all in `dir`.
class Connect {
 public:
  Connect(const Services& services, const std::string& database_url, const std::string& run)
      : dir_(std::filesystem::temp_directory_path() / ("fraud-" + run)), run_(run), database_url_(database_url) {
    std::filesystem::create_directories(dir_);
    // postgresql://user@host:port/name
    auto at = database_url.find('@'), colon = database_url.rfind(':'), slash = database_url.rfind('/');
    user_ = database_url.substr(database_url.find("//") + 2, at - database_url.find("//") - 2);
    host_ = database_url.substr(at + 1, colon - at - 1);
    port_ = database_url.substr(colon + 1, slash - colon - 1);
    database_ = database_url.substr(slash + 1);
    bootstrap_ = services.bootstrap_servers;
    write_file(dir_ / "log4j.properties",
               "log4j.rootLogger=WARN, stderr\n"
               "log4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
               "log4j.appender.stderr.Target=System.err\n"
               "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
               "log4j.appender.stderr.layout.ConversionPattern=%d %p %c{1}: %m%n\n"
               "log4j.logger.io.debezium=INFO\n");
    for (const auto& s : settings()) {
      std::string text = "name=" + s.name +
                         "\n"
                         "connector.class=io.debezium.connector.postgresql.PostgresConnector\n"
                         "plugin.name=pgoutput\n"
                         "database.hostname=" +
                         host_ + "\ndatabase.port=" + port_ + "\ndatabase.user=" + user_ +
                         "\ndatabase.dbname=" + database_ + "\ntopic.prefix=" + topic(s) +
                         "\ntable.include.list=public." + table(s) + "\nslot.name=" + slot(s) +
                         "\npublication.name=" + slot(s) +
                         "\npublication.autocreate.mode=filtered\n"
                         "snapshot.mode=initial\n"
                         "transforms=outbox\n"
                         "transforms.outbox.type=io.debezium.transforms.outbox.EventRouter\n"
                         "transforms.outbox.route.topic.replacement=" +
                         topic(s) + "\n";
      for (const auto& p : s.properties) text += p + "\n";
      write_file(dir_ / (s.name + ".properties"), text);
    }
  }

  // The replication slots go with the connectors: a slot nobody reads keeps its WAL for ever,
  // and an active one (its walsender outlives a killed Connect for a moment) stops the
  // database from being dropped. Each slot is ended, then dropped by its exact name.
  ~Connect() {
    worker_.reset();
    try {
      pqxx::connection c(database_url_);
      for (const auto& s : settings()) {
        auto name = c.quote(slot(s));
        bool inactive = wait_until(20s, [&] {
          pqxx::nontransaction tx(c);
          tx.exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = " + name +
                  " AND active");
          return tx.exec("SELECT 1 FROM pg_replication_slots WHERE slot_name = " + name + " AND active").empty();
        });
        if (inactive)
          pqxx::nontransaction(c).exec(
              "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
              "WHERE slot_name = " +
              name);
        else MESSAGE("replication slot " << slot(s) << " still active; not dropped");
      }
    } catch (const std::exception& e) {
      MESSAGE("could not drop the replication slots of " << run_ << ": " << e.what());
    }
    std::filesystem::remove_all(dir_);
  }

  std::string table(const Setting& s) const { return "outbox_" + s.name; }
  std::string topic(const Setting& s) const { return run_ + "-" + s.name; }
  std::string slot(const Setting& s) const { return run_ + "_" + s.name; }

  /// Starts the worker; its offsets are flushed every `flush_interval` (and at a clean stop).
  void start(std::chrono::milliseconds flush_interval) {
    write_file(dir_ / "worker.properties", "bootstrap.servers=" + bootstrap_ +
                                               "\n"
                                               "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
                                               "value.converter=org.apache.kafka.connect.json.JsonConverter\n"
                                               "offset.storage.file.filename=" +
                                               (dir_ / "offsets").string() +
                                               "\n"
                                               "offset.flush.interval.ms=" +
                                               std::to_string(flush_interval.count()) +
                                               "\n"
                                               "listeners=http://127.0.0.1:" +
                                               std::to_string(free_port()) + "\n");
    std::vector<std::string> args = {"/usr/bin/java",
                                     "-Dlog4j.configuration=file:" + (dir_ / "log4j.properties").string(),
                                     "-cp",
                                     FRAUD_SOURCE_DIR "/.local/debezium/libs/*",
                                     "org.apache.kafka.connect.cli.ConnectStandalone",
                                     (dir_ / "worker.properties").string()};
    for (const auto& s : settings()) args.push_back((dir_ / (s.name + ".properties")).string());
    worker_ = std::make_unique<ChildProcess>(args, std::map<std::string, std::string>{}, log());
  }

  /// SIGTERM: Connect flushes its offsets and exits (Java's status for SIGTERM is 143); a
  /// stop that needed a kill would flush nothing, and the test would not be what it says.
  /// SIGKILL: it flushes nothing.
  void stop(int signal) {
    auto status = worker_->stop(signal, 60s);
    worker_.reset();
    if (signal == SIGTERM)
      REQUIRE_MESSAGE((status == 0 || status == 143), "Connect did not stop cleanly on SIGTERM; see " << log());
  }

  /// Forgets what Connect has read: its next start snapshots every table again.
  void lose_offsets() { std::filesystem::remove(dir_ / "offsets"); }

  std::string log() const { return (dir_.parent_path() / ("fraud-" + run_ + "-connect.log")).string(); }

 private:
  std::filesystem::path dir_;
  std::string run_, database_url_, user_, host_, port_, database_, bootstrap_;
  std::unique_ptr<ChildProcess> worker_;
};

/// `count` rows into each setting's outbox table, in Debezium's default shape, a second
/// apart from 09:00:00 on; accounts of their own per setting. `first` numbers them.
void insert_rows(TestDatabase& db, const Connect& connect, int first, int count) {
  for (const auto& s : settings())
    for (int i = first; i < first + count; ++i) {
      char when[32];
      std::snprintf(when, sizeof when, "2026-11-27T09:%02d:%02dZ", i / 60, i % 60);
      auto event = transaction_event(i, std::to_string(10 + i) + ".00", when, s.name + "-acc-" + std::to_string(i % 7));
      db.query("INSERT INTO " + connect.table(s) +
               " (id, aggregatetype, aggregateid, type, payload) VALUES (gen_random_uuid(), 'Account', '" + event.key +
               "', 'TransactionRecorded', '" + event.value + "'::jsonb - 'event_id')");
    }
}

/// Records in `topic` (one partition).
std::int64_t records_in(const Services& services, const std::string& topic) {
  return high_watermarks(services.bootstrap_servers, topic, 1).at(0);
}

bool every_topic_holds(const Services& services, const Connect& connect, std::int64_t at_least) {
  for (const auto& s : settings())
    if (records_in(services, connect.topic(s)) < at_least) return false;
  return true;
}

}  // namespace

TEST_CASE(
    "Debezium's outbox EventRouter: every id applied once in every converter setting across a crash and a "
    "re-snapshot") {
  constexpr int kRows = 20;  // per table and phase
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto run = unique_name("dbz");
  Connect connect(services, db.url(), run);
  std::string topics;
  for (const auto& s : settings()) {
    db.query("CREATE TABLE " + connect.table(s) +
             " (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, "
             "type varchar(255) NOT NULL, payload jsonb)");
    create_topic(services.bootstrap_servers, connect.topic(s), 1);
    topics += (topics.empty() ? "" : ",") + connect.topic(s);
  }
  // Every event raises one alert recording its account's count of events in the last hour:
  // a redelivery applied twice would count twice.
  ChildProcess replica({FRAUD_CONSUMER_BINARY, "run"},
                       replica_environment(services, db.service_url(), topics, unique_name("fraud"),
                                           {{"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/tests/data/feature_rules.yaml"}}),
                       connect.log() + ".replica");

  // Snapshot: rows written before the connectors ever ran. A clean stop flushes the offsets.
  insert_rows(db, connect, 0, kRows);
  connect.start(1000ms);
  REQUIRE_MESSAGE(wait_until(180s, [&] { return every_topic_holds(services, connect, kRows); }),
                  "the snapshot did not reach every topic; see " << connect.log());
  connect.stop(SIGTERM);

  // Streaming, then a crash before any offset flush: the next run reads those rows again.
  connect.start(600000ms);
  insert_rows(db, connect, kRows, kRows);
  REQUIRE(wait_until(180s, [&] { return every_topic_holds(services, connect, 2 * kRows); }));
  connect.stop(SIGKILL);
  connect.start(1000ms);
  insert_rows(db, connect, 2 * kRows, kRows);
  REQUIRE_MESSAGE(wait_until(180s, [&] { return every_topic_holds(services, connect, 4 * kRows); }),
                  "the rows streamed before the crash were not replayed; see " << connect.log());
  connect.stop(SIGTERM);

  // Offsets lost: the connectors snapshot every table again.
  connect.lose_offsets();
  connect.start(1000ms);
  REQUIRE(wait_until(180s, [&] { return every_topic_holds(services, connect, 7 * kRows); }));
  connect.stop(SIGTERM);

  for (const auto& s : settings())
    REQUIRE_MESSAGE(wait_until(120s, [&] { return offsets_at_end(db, services, connect.topic(s), 1); }),
                    "the replica did not catch up with " << connect.topic(s));
  CHECK(replica.stop(SIGTERM, 30s) == 0);

  for (const auto& s : settings()) {
    CAPTURE(s.name);
    // The first record as Connect wrote it: the setting's headers and value.
    auto first = output_of("kcat -C -q -e -c 1 -o beginning -b " + services.bootstrap_servers + " -t " +
                           connect.topic(s) + " -f '%h\\n%s\\n'");
    auto newline = first.find('\n');
    CAPTURE(first);
    CHECK(std::regex_search(first.substr(0, newline), std::regex(s.headers)));
    CHECK(std::regex_search(first.substr(newline + 1), std::regex(s.value)));
    auto topic = "'" + connect.topic(s) + "'", table = connect.table(s);
    CHECK(records_in(services, connect.topic(s)) >= 7 * kRows);  // every row delivered twice or more
    CHECK(db.count("SELECT count(*) FROM rejected_events WHERE topic = " + topic) == 0);
    CHECK(db.count("SELECT count(*) FROM processed_events WHERE topic = " + topic) == 3 * kRows);
    // Each applied id is a row's id, with that row's account and amount.
    CHECK(db.count("SELECT count(*) FROM transactions t JOIN " + table +
                   " o ON t.event_id = o.id::text WHERE t.account_id = o.aggregateid AND t.amount_minor = "
                   "((o.payload->'amount'->>'value')::numeric * 100)::bigint") == 3 * kRows);
    // Each account's n-th event (rows are written and delivered in event-time order) saw n.
    CHECK(db.count("SELECT count(*) FROM fraud_alerts a JOIN " + table + " o ON a.event_id = o.id::text") == 3 * kRows);
    CHECK(miscounted_alerts(db, "JOIN " + table + " o ON t.event_id = o.id::text") == 0);
  }
}
