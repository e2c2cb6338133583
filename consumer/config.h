#pragma once
// The service's configuration: one typed struct, read from a YAML file, every value
// overridable by an environment variable FRAUD_<SECTION>_<KEY>, validated before anything
// starts.

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "events/decode.h"
#include "ops/environment.h"
#include "rules/rule_set.h"
#include "store/batch_store.h"
#include "store/retention.h"

namespace fraud::consumer {

/// A configuration value that is missing or wrong; the message names the key and the
/// environment variable that sets it.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct KafkaConfig {
  std::string bootstrap_servers;
  std::string group_id = "fraud-detection";
  std::vector<std::string> topics = {"transactions"};
  /// librdkafka properties passed through as they are, e.g. "session.timeout.ms".
  std::map<std::string, std::string> properties;
};

struct PostgresConfig {
  /// The service's connection: a libpq URI, postgresql://user@host:port/db?sslmode=verify-full.
  /// Its role should be a member of fraud_service and own nothing (docs/SECURITY.md).
  /// Give the password in PGPASSWORD or a PGPASSFILE, not here.
  std::string url;
  /// `fraud-consumer migrate`'s connection, as a member of the tables' owner; empty: `url`.
  std::string migration_url;
  /// `fraud-consumer store prune`'s connection, as a member of fraud_maintenance (migrations/
  /// 0028); empty: the migrations'.
  std::string maintenance_url;

  const std::string& for_migrations() const { return migration_url.empty() ? url : migration_url; }
  const std::string& for_maintenance() const { return maintenance_url.empty() ? for_migrations() : maintenance_url; }
};

struct BatchConfig {
  std::int64_t max_records = 1000;  ///< a batch (all partitions' records in hand) commits at this many records…
  std::int64_t max_wait_ms = 50;    ///< …or when its oldest record waited this long (sooner once none wait)
};

/// Bounds on untrusted input. Records come from anyone who can write to the topic; rule
/// files are written by people and reloaded at run time. Anything beyond a bound is refused
/// with a message naming it: a record is rejected (and kept in rejected_events), a rule file
/// does not load.
struct LimitsConfig {
  // The defaults are the decoder's and the rule reader's own (events/decode.h, rules/rule_set.h).
  std::int64_t max_record_bytes = events::DecodeLimits{}.max_record_bytes;  ///< a record's value
  std::int64_t max_json_depth = events::DecodeLimits{}.max_json_depth;      ///< nesting of a record's JSON
  std::int64_t max_string_bytes = events::DecodeLimits{}.max_string_bytes;  ///< a free-text field of a record
  std::int64_t max_rules = rules::RuleLimits{}.max_rules;                   ///< rules in a rule file
  std::int64_t max_features = rules::RuleLimits{}.max_features;             ///< features in a rule file
  /// characters of one `when` or `where`
  std::int64_t max_expression_length = rules::RuleLimits{}.max_expression_length;
  std::int64_t max_expression_depth = rules::RuleLimits{}.max_expression_depth;  ///< nesting of one expression

  events::DecodeLimits decode() const;
  rules::RuleLimits rules() const;
};

struct RulesConfig {
  /// The rule file (docs/RULES.md). Reloaded on SIGHUP and when it changes.
  std::string file = "config/rules.yaml";
  /// How often the file's modification time is checked, in milliseconds; 0 turns it off.
  std::int64_t watch_interval_ms = 2000;
};

/// How long processed_events and the transaction history keep a day (`fraud-consumer store
/// prune` drops older days). It is also the dedup window: the service refuses, as rejected
/// records, events older than this, whose duplicates could no longer be recognised. It bounds
/// what features can see too: time_since_last looks back at most this far.
struct RetentionConfig {
  std::int64_t days = store::RetentionPolicy{}.retention_days;    ///< 0: keep everything, and accept events of any age
  std::int64_t days_ahead = store::RetentionPolicy{}.days_ahead;  ///< partitions prune makes ahead of today
};

struct OutboxConfig {
  std::string alerts_topic = store::OutboxTopics{}.alerts;
  std::string dead_letter_topic = store::OutboxTopics{}.dead_letters;
};

struct MetricsConfig {
  /// host:port of /metrics, /healthz and /readyz; port 0 picks a free port (it is logged).
  std::string listen = "127.0.0.1:9464";
};

/// The inline door, POST /v1/decisions (docs/DECISIONS.md): off unless `listen` is set.
struct DecisionsConfig {
  std::string listen;  ///< host:port of the API; empty: no inline door. Port 0 picks a free port (it is logged)
  /// The bearer token callers present; give it as FRAUD_DECISIONS_TOKEN_FILE, never in the file.
  std::string token;
  std::int64_t deadline_ms = 100;   ///< past it a request is answered with `fallback`, marked as such
  std::string fallback = "review";  ///< allow, review or block
  std::int64_t max_group = 256;     ///< the most requests one transaction takes
  /// The least time between the starts of two groups, in µs: the requests that arrive meanwhile
  /// share the next one. Less CPU per request at a steady load; it adds at most this to a
  /// request's wait. 0: a group starts as soon as the last one committed. At most a quarter
  /// of deadline_ms.
  std::int64_t group_interval_us = 3000;
  /// The source that scopes the ids of the stream's copies: the CloudEvents `ce_source` when the
  /// outbox publishes CloudEvents; empty for the plain and Debezium envelopes. A request's
  /// identity is (this, its event_id); one naming another source is refused.
  std::string event_source;
};

struct HealthConfig {
  /// /readyz fails once the consumer has been out of the group (in a rebalance, or unable
  /// to reach the coordinator) longer than this.
  std::int64_t max_rebalance_seconds = 60;
};

struct ShutdownConfig {
  /// SIGTERM to exit: applying the batch in hand and leaving the group must fit in this.
  std::int64_t timeout_seconds = 30;
};

struct LogConfig {
  std::string level = "info";  ///< debug, info, warn or error
};

struct Config {
  KafkaConfig kafka;
  PostgresConfig postgres;
  BatchConfig batch;
  LimitsConfig limits;
  RulesConfig rules;
  RetentionConfig retention;
  OutboxConfig outbox;
  ShutdownConfig shutdown;
  MetricsConfig metrics;
  DecisionsConfig decisions;
  HealthConfig health;
  LogConfig log;
};

/// Environment variables by name; a parameter so tests need not touch the process's own.
using Environment = ops::Environment;

/// What a command needs of the configuration: the service all of it; the database commands
/// (migrate, store prune, rules backtest) never touch Kafka, so they need no Kafka settings.
enum class ConfigUse { service, database_only };

/// Loads `path` (empty: no file, defaults and environment only), applies the environment,
/// validates what `use` needs. Throws ConfigError with one message a person can act on.
Config load_config(const std::string& path, const Environment& env, ConfigUse use = ConfigUse::service);

}  // namespace fraud::consumer
