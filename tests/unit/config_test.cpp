// Configuration: the file, the environment over it, and one clear message per mistake.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "consumer/config.h"

using namespace fraud::consumer;

namespace {

const Environment kRequired = {{"FRAUD_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"},
                               {"FRAUD_POSTGRES_URL", "postgresql://u@127.0.0.1:5432/db"}};

/// A config file that lives as long as the test case. CTest runs each test case as its own
/// process, several at once, so the name carries the process id as well as a counter.
struct TempFile {
  explicit TempFile(const std::string& text)
      : path("/tmp/fraud-config-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + ".yaml") {
    std::ofstream(path) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
  std::string path;
  static inline int counter = 0;
};

std::string error_of(const std::string& path, const Environment& env) {
  try {
    load_config(path, env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

Environment with(Environment env, const std::string& name, const std::string& value) {
  env[name] = value;
  return env;
}

}  // namespace

TEST_CASE("the example config file loads") {
  auto config = load_config(std::string(FRAUD_SOURCE_DIR) + "/config/consumer.yaml", kRequired);
  CHECK(config.kafka.group_id == "fraud-detection");
  CHECK(config.kafka.topics == std::vector<std::string>{"transactions"});
  CHECK(config.batch.max_records > 0);
}

TEST_CASE("environment variables override the file") {
  TempFile file("kafka:\n  group_id: from-file\n  topics: [a, b]\nbatch:\n  max_records: 10\n");
  auto env = with(with(kRequired, "FRAUD_KAFKA_GROUP_ID", "from-env"), "FRAUD_KAFKA_TOPICS", "x, y,z");
  auto config = load_config(file.path, env);
  CHECK(config.kafka.group_id == "from-env");
  CHECK(config.kafka.topics == std::vector<std::string>{"x", "y", "z"});
  CHECK(config.batch.max_records == 10);
}

TEST_CASE("kafka properties pass through from the file and the environment") {
  TempFile file("kafka:\n  properties:\n    session.timeout.ms: 6000\n");
  auto config = load_config(file.path, with(kRequired, "FRAUD_KAFKA_PROPERTIES_GROUP_INSTANCE_ID", "replica-1"));
  CHECK(config.kafka.properties.at("session.timeout.ms") == "6000");
  CHECK(config.kafka.properties.at("group.instance.id") == "replica-1");
}

TEST_CASE("a missing required value names its key and variable") {
  auto error = error_of("", {{"FRAUD_POSTGRES_URL", "postgresql://u@h/db"}});
  CHECK(error.find("kafka.bootstrap_servers (FRAUD_KAFKA_BOOTSTRAP_SERVERS): required") != std::string::npos);
  error = error_of("", {{"FRAUD_KAFKA_BOOTSTRAP_SERVERS", "h:1"}});
  CHECK(error.find("postgres.url (FRAUD_POSTGRES_URL)") != std::string::npos);
}

TEST_CASE("a wrong value says what is wrong") {
  CHECK(error_of("", with(kRequired, "FRAUD_BATCH_MAX_RECORDS", "lots")).find("'lots' is not an integer") !=
        std::string::npos);
  CHECK(error_of("", with(kRequired, "FRAUD_BATCH_MAX_RECORDS", "0")).find("batch.max_records") != std::string::npos);
  CHECK(error_of("", with(kRequired, "FRAUD_POSTGRES_URL", "host=x")).find("postgresql://") != std::string::npos);
  CHECK(error_of("", with(kRequired, "FRAUD_LOG_LEVEL", "loud")).find("log.level") != std::string::npos);
  CHECK(error_of("", with(kRequired, "FRAUD_RULES_FILE", "")).find("rules.file (FRAUD_RULES_FILE)") !=
        std::string::npos);
}

TEST_CASE("the inline door's group interval is bounded, by a quarter of the deadline too, and 0 is allowed") {
  CHECK(load_config("", kRequired).decisions.group_interval_us == 3000);
  CHECK(load_config("", with(kRequired, "FRAUD_DECISIONS_GROUP_INTERVAL_US", "0")).decisions.group_interval_us == 0);
  CHECK(error_of("", with(kRequired, "FRAUD_DECISIONS_GROUP_INTERVAL_US", "200000"))
            .find("decisions.group_interval_us (FRAUD_DECISIONS_GROUP_INTERVAL_US): must be 0..100000") !=
        std::string::npos);
  auto short_deadline = with(kRequired, "FRAUD_DECISIONS_DEADLINE_MS", "10");
  CHECK(
      load_config("", with(short_deadline, "FRAUD_DECISIONS_GROUP_INTERVAL_US", "2500")).decisions.group_interval_us ==
      2500);
  CHECK(error_of("", short_deadline)
            .find("decisions.group_interval_us (FRAUD_DECISIONS_GROUP_INTERVAL_US): must be at "
                  "most a quarter of decisions.deadline_ms") != std::string::npos);
}

TEST_CASE("an unknown key in the file is an error with its line and column") {
  TempFile file("kafka:\n  grup_id: oops\n");
  auto error = error_of(file.path, kRequired);
  CHECK(error.find(file.path + ":2:3: kafka.grup_id: unknown setting") != std::string::npos);
}

TEST_CASE("a file that is not YAML or not there is an error naming it") {
  TempFile file("kafka: [unclosed\n");
  CHECK(error_of(file.path, kRequired).find(file.path + ":") != std::string::npos);
  CHECK(error_of("/nonexistent/fraud.yaml", kRequired).find("cannot be read") != std::string::npos);
}

TEST_CASE("properties that would undo the offset guarantees are refused") {
  auto error = error_of("", with(kRequired, "FRAUD_KAFKA_PROPERTIES_ENABLE_AUTO_COMMIT", "true"));
  CHECK(error.find("enable.auto.commit") != std::string::npos);
  CHECK(error_of("", with(kRequired, "FRAUD_KAFKA_PROPERTIES_AUTO_OFFSET_RESET", "latest"))
            .find("kafka.properties.auto.offset.reset: set by the service itself") != std::string::npos);
  CHECK(error_of("", with(kRequired, "FRAUD_KAFKA_PROPERTIES_PARTITION_ASSIGNMENT_STRATEGY", "range"))
            .find("kafka.properties.partition.assignment.strategy: set by the service itself") != std::string::npos);
}

TEST_CASE("no more features than the engine's 64-bit filter mask holds") {
  CHECK(error_of("", with(kRequired, "FRAUD_LIMITS_MAX_FEATURES", "65")).find("must be 0..64") != std::string::npos);
}

TEST_CASE("input limits are settings, and each is bounded") {
  auto env = with(with(kRequired, "FRAUD_LIMITS_MAX_STRING_BYTES", "100"), "FRAUD_LIMITS_MAX_RULES", "3");
  env = with(with(env, "FRAUD_LIMITS_MAX_EXPRESSION_DEPTH", "8"), "FRAUD_LIMITS_MAX_FEATURES", "2");
  auto config = load_config("", with(env, "FRAUD_LIMITS_MAX_EXPRESSION_LENGTH", "200"));
  CHECK(config.limits.decode().max_string_bytes == 100);
  CHECK(config.limits.rules().max_rules == 3);
  CHECK(config.limits.rules().max_features == 2);
  CHECK(config.limits.rules().max_expression_length == 200);
  CHECK(config.limits.rules().max_expression_depth == 8);
  CHECK(error_of("", with(kRequired, "FRAUD_LIMITS_MAX_EXPRESSION_DEPTH", "100000"))
            .find("limits.max_expression_depth (FRAUD_LIMITS_MAX_EXPRESSION_DEPTH): must be 4..256") !=
        std::string::npos);
  CHECK(error_of("", with(kRequired, "FRAUD_LIMITS_MAX_STRING_BYTES", "1")).find("limits.max_string_bytes") !=
        std::string::npos);
}

TEST_CASE("a setting or a Kafka property can come from a secret file, and a missing file is named") {
  TempFile password("s3cret\n"), url("postgresql://owner:pw@db/fraud\n");
  auto env = with(with(kRequired, "FRAUD_KAFKA_PROPERTIES_SASL_PASSWORD_FILE", password.path),
                  "FRAUD_POSTGRES_MIGRATION_URL_FILE", url.path);
  auto config = load_config("", env);
  CHECK(config.kafka.properties.at("sasl.password") == "s3cret");
  CHECK(config.postgres.migration_url == "postgresql://owner:pw@db/fraud");
  auto error = error_of("", with(kRequired, "FRAUD_POSTGRES_URL_FILE", "/nonexistent/secret"));
  CHECK(error.find("FRAUD_POSTGRES_URL_FILE: the file '/nonexistent/secret' cannot be read") != std::string::npos);
}

TEST_CASE("migrations use their own connection when one is given") {
  CHECK(load_config("", kRequired).postgres.for_migrations() == kRequired.at("FRAUD_POSTGRES_URL"));
  auto config = load_config("", with(kRequired, "FRAUD_POSTGRES_MIGRATION_URL", "postgresql://owner@h/db"));
  CHECK(config.postgres.for_migrations() == "postgresql://owner@h/db");
  CHECK(config.postgres.url == kRequired.at("FRAUD_POSTGRES_URL"));
}

TEST_CASE("prune uses the maintenance connection, else the migrations', else the service's") {
  CHECK(load_config("", kRequired).postgres.for_maintenance() == kRequired.at("FRAUD_POSTGRES_URL"));
  auto owner = with(kRequired, "FRAUD_POSTGRES_MIGRATION_URL", "postgresql://owner@h/db");
  CHECK(load_config("", owner).postgres.for_maintenance() == "postgresql://owner@h/db");
  auto config = load_config("", with(owner, "FRAUD_POSTGRES_MAINTENANCE_URL", "postgresql://maintainer@h/db"));
  CHECK(config.postgres.for_maintenance() == "postgresql://maintainer@h/db");
  CHECK(config.postgres.for_migrations() == "postgresql://owner@h/db");
  CHECK(error_of("", with(kRequired, "FRAUD_POSTGRES_MAINTENANCE_URL", "maintainer@h/db"))
            .find("must be empty (use migration_url) or a libpq URI") != std::string::npos);
}

TEST_CASE("the database commands need no Kafka settings") {
  std::map<std::string, std::string> database_only = {{"FRAUD_POSTGRES_URL", "postgresql://u@h/db"}};
  auto config = load_config("", database_only, ConfigUse::database_only);
  CHECK(config.postgres.url == "postgresql://u@h/db");
  CHECK_THROWS_AS(load_config("", database_only, ConfigUse::service), ConfigError);
}
