#include "consumer/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <limits>
#include <utility>

#include <unistd.h>

#include "ops/environment.h"
#include "rules/file_position.h"
#include "store/batch_store.h"

namespace fraud::consumer {
namespace {

/// Where a value came from, for error messages: "kafka.group_id (FRAUD_KAFKA_GROUP_ID)".
std::string env_name(const std::string& section, const std::string& key) {
  std::string name = "FRAUD_" + section + "_" + key;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return c == '.' ? '_' : static_cast<char>(std::toupper(c)); });
  return name;
}

std::string label(const std::string& section, const std::string& key) {
  return section + "." + key + " (" + env_name(section, key) + ")";
}

std::int64_t to_int(const std::string& text, const std::string& where) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size())
    throw ConfigError(where + ": '" + text + "' is not an integer");
  return value;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) items.push_back(item);
    start = comma + 1;
  }
  return items;
}

/// One setting: where it lives, how its text is stored, and what values it takes. Reading
/// (the file and the environment) and validation both go through this table.
struct Setting {
  std::string section, key;
  std::function<void(Config&, const std::string& text, const std::string& where)> set;
  /// What is wrong with the value the setting holds; empty when nothing is.
  std::function<std::string(const Config&)> check;
};

/// An integer setting in [min, max] (or 0 too, when `zero_too`); `rule` words the range
/// when "must be min..max" would not say it well.
template <class Section>
Setting integer(const char* section, const char* key, Section Config::*part, std::int64_t Section::*member,
                std::int64_t min, std::int64_t max, std::string rule = {}, bool zero_too = false) {
  if (rule.empty()) rule = "must be " + std::to_string(min) + ".." + std::to_string(max);
  return {section, key, [=](Config& c, const std::string& v, const std::string& w) { c.*part.*member = to_int(v, w); },
          [=](const Config& c) {
            auto v = c.*part.*member;
            return (v >= min && v <= max) || (zero_too && v == 0) ? std::string() : rule;
          }};
}

/// `setting` with one more check, made after its own: one that reads other settings too.
Setting also(Setting setting, std::function<std::string(const Config&)> check) {
  setting.check = [own = std::move(setting.check), check = std::move(check)](const Config& c) {
    auto wrong = own(c);
    return wrong.empty() ? check(c) : wrong;
  };
  return setting;
}

/// A text setting; `ok` says whether a value is acceptable, `rule` what is.
template <class Section>
Setting text(const char* section, const char* key, Section Config::*part, std::string Section::*member,
             bool (*ok)(const std::string&) = nullptr, const std::string& rule = {}) {
  return {section, key, [=](Config& c, const std::string& v, const std::string&) { c.*part.*member = v; },
          [=](const Config& c) { return !ok || ok(c.*part.*member) ? std::string() : rule; }};
}

bool filled(const std::string& v) { return !v.empty(); }
bool libpq_uri(const std::string& v) { return v.starts_with("postgresql://") || v.starts_with("postgres://"); }
bool libpq_uri_or_empty(const std::string& v) { return v.empty() || libpq_uri(v); }
bool log_level(const std::string& v) { return v == "debug" || v == "info" || v == "warn" || v == "error"; }
bool host_port(const std::string& v) { return v.rfind(':') != std::string::npos && v.rfind(':') + 1 < v.size(); }
bool host_port_or_empty(const std::string& v) { return v.empty() || host_port(v); }
bool decision(const std::string& v) { return v == "allow" || v == "review" || v == "block"; }

constexpr std::int64_t kUnbounded = std::numeric_limits<std::int64_t>::max();

const std::vector<Setting>& settings() {
  using C = Config;
  static_assert(100000 < store::kAppliedSeqPerBatch, "a batch's events are numbered below kAppliedSeqPerBatch");
  static const std::vector<Setting> table = {
      // Required only by the service (validate()): the database commands never touch Kafka.
      text("kafka", "bootstrap_servers", &C::kafka, &KafkaConfig::bootstrap_servers),
      text("kafka", "group_id", &C::kafka, &KafkaConfig::group_id),
      {"kafka", "topics", [](Config& c, const std::string& v, auto&) { c.kafka.topics = split_list(v); }, {}},
      text("postgres", "url", &C::postgres, &PostgresConfig::url, libpq_uri,
           "required, a libpq URI starting with postgresql://, e.g. postgresql://user@host:5432/db"),
      text("postgres", "migration_url", &C::postgres, &PostgresConfig::migration_url, libpq_uri_or_empty,
           "must be empty (use url) or a libpq URI starting with postgresql://"),
      text("postgres", "maintenance_url", &C::postgres, &PostgresConfig::maintenance_url, libpq_uri_or_empty,
           "must be empty (use migration_url) or a libpq URI starting with postgresql://"),
      integer("batch", "max_records", &C::batch, &BatchConfig::max_records, 1, 100000),
      integer("batch", "max_wait_ms", &C::batch, &BatchConfig::max_wait_ms, 0, 60000),
      integer("limits", "max_record_bytes", &C::limits, &LimitsConfig::max_record_bytes, 256, 64 << 20),
      integer("limits", "max_json_depth", &C::limits, &LimitsConfig::max_json_depth, 4, 1024),
      integer("limits", "max_string_bytes", &C::limits, &LimitsConfig::max_string_bytes, 64, 1 << 20),
      integer("limits", "max_rules", &C::limits, &LimitsConfig::max_rules, 1, 100000),
      // The feature engine keeps one bit per feature for `where` filters (rules/features.h).
      integer("limits", "max_features", &C::limits, &LimitsConfig::max_features, 0, 64),
      integer("limits", "max_expression_length", &C::limits, &LimitsConfig::max_expression_length, 16, 1 << 20),
      // The parser recurses once per level: the upper bound keeps a hostile file off the stack's end.
      integer("limits", "max_expression_depth", &C::limits, &LimitsConfig::max_expression_depth, 4, 256),
      text("rules", "file", &C::rules, &RulesConfig::file, filled, "required: the path of the rule file"),
      integer("rules", "watch_interval_ms", &C::rules, &RulesConfig::watch_interval_ms, 0, kUnbounded,
              "must be 0 (off) or more"),
      // Two days at least: prune keeps one day beyond the window for clock skew.
      integer("retention", "days", &C::retention, &RetentionConfig::days, 2, 36500,
              "must be 0 (keep everything) or 2..36500", true),
      integer("retention", "days_ahead", &C::retention, &RetentionConfig::days_ahead, 1, 366),
      text("outbox", "alerts_topic", &C::outbox, &OutboxConfig::alerts_topic, filled, "must not be empty"),
      text("outbox", "dead_letter_topic", &C::outbox, &OutboxConfig::dead_letter_topic, filled, "must not be empty"),
      integer("shutdown", "timeout_seconds", &C::shutdown, &ShutdownConfig::timeout_seconds, 1, 600),
      text("metrics", "listen", &C::metrics, &MetricsConfig::listen, host_port, "must be host:port, e.g. 0.0.0.0:9464"),
      text("decisions", "listen", &C::decisions, &DecisionsConfig::listen, host_port_or_empty,
           "must be empty (no inline door) or host:port, e.g. 0.0.0.0:8443"),
      text("decisions", "token", &C::decisions, &DecisionsConfig::token),
      integer("decisions", "deadline_ms", &C::decisions, &DecisionsConfig::deadline_ms, 1, 60000),
      text("decisions", "fallback", &C::decisions, &DecisionsConfig::fallback, decision,
           "must be allow, review or block"),
      integer("decisions", "max_group", &C::decisions, &DecisionsConfig::max_group, 1, 10000),
      // A request may wait an interval for its group to start: past a quarter of the deadline,
      // too many would be answered with the fallback.
      also(integer("decisions", "group_interval_us", &C::decisions, &DecisionsConfig::group_interval_us, 0, 100000),
           [](const Config& c) {
             return c.decisions.group_interval_us * 4 <= c.decisions.deadline_ms * 1000
                        ? std::string()
                        : std::string("must be at most a quarter of decisions.deadline_ms");
           }),
      text("decisions", "event_source", &C::decisions, &DecisionsConfig::event_source),
      integer("health", "max_rebalance_seconds", &C::health, &HealthConfig::max_rebalance_seconds, 1, kUnbounded,
              "must be at least 1"),
      text("log", "level", &C::log, &LogConfig::level, log_level, "must be debug, info, warn or error"),
  };
  return table;
}

const Setting* find_setting(const std::string& section, const std::string& key) {
  for (const auto& f : settings())
    if (f.section == section && f.key == key) return &f;
  return nullptr;
}

std::string at(const std::string& path, const YAML::Node& node) { return rules::file_position(path, node.Mark()); }

/// A YAML scalar or, for lists, a sequence of scalars joined with commas.
std::string scalar_text(const YAML::Node& node, const std::string& where) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsSequence()) {
    std::string joined;
    for (const auto& item : node) {
      if (!item.IsScalar()) throw ConfigError(where + ": expected a list of strings");
      joined += (joined.empty() ? "" : ",") + item.Scalar();
    }
    return joined;
  }
  throw ConfigError(where + ": expected a value, got " + (node.IsMap() ? "a mapping" : "nothing"));
}

void read_properties(Config& config, const YAML::Node& node, const std::string& where) {
  if (!node.IsMap()) throw ConfigError(where + ": kafka.properties must be a mapping of librdkafka properties");
  for (const auto& entry : node) {
    auto name = entry.first.as<std::string>();
    config.kafka.properties[name] = scalar_text(entry.second, where + " kafka.properties." + name);
  }
}

void read_file(Config& config, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError("config file " + path + ": cannot be read");
  } catch (const YAML::ParserException& e) {
    throw ConfigError("config file " + rules::file_position(path, e.mark) + ": " + e.msg);
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw ConfigError(at(path, root) + ": expected a mapping of sections (kafka, postgres, …)");
  for (const auto& section : root) {
    auto name = section.first.as<std::string>();
    if (!section.second.IsMap())
      throw ConfigError(at(path, section.first) + ": section '" + name + "' must be a mapping");
    for (const auto& entry : section.second) {
      auto key = entry.first.as<std::string>();
      auto where = at(path, entry.first) + ": " + name + "." + key;
      if (name == "kafka" && key == "properties") {
        read_properties(config, entry.second, at(path, entry.first));
        continue;
      }
      const Setting* field = find_setting(name, key);
      if (!field) throw ConfigError(where + ": unknown setting");
      field->set(config, scalar_text(entry.second, where), where);
    }
  }
}

/// The content of a secret file named by a `…_FILE` variable (ops/environment.h), or a
/// ConfigError naming the variable and the file.
std::string secret_from_file(const std::string& variable, const std::string& path) {
  try {
    return ops::secret_from_file(variable, path);
  } catch (const std::runtime_error& e) {
    throw ConfigError(e.what());
  }
}

// FRAUD_KAFKA_PROPERTIES_SESSION_TIMEOUT_MS sets the librdkafka property session.timeout.ms,
// over what the file says (ops/environment.h).
void read_property_overrides(Config& config, const Environment& env) {
  try {
    for (auto& [name, value] : ops::kafka_properties(env)) config.kafka.properties[name] = std::move(value);
  } catch (const std::runtime_error& e) {
    throw ConfigError(e.what());
  }
}

void read_environment(Config& config, const Environment& env) {
  for (const auto& f : settings()) {
    auto name = env_name(f.section, f.key);
    if (auto file = env.find(name + "_FILE"); file != env.end())
      f.set(config, secret_from_file(name + "_FILE", file->second), label(f.section, f.key));
    if (auto value = env.find(name); value != env.end()) f.set(config, value->second, label(f.section, f.key));
  }
  read_property_overrides(config, env);
}

void require(bool ok, const std::string& section, const std::string& key, const std::string& what) {
  if (!ok) throw ConfigError(label(section, key) + ": " + what);
}

void validate(const Config& c, ConfigUse use) {
  if (use == ConfigUse::service) {
    require(!c.kafka.bootstrap_servers.empty(), "kafka", "bootstrap_servers", "required, e.g. 127.0.0.1:9092");
    require(!c.kafka.group_id.empty(), "kafka", "group_id", "must not be empty");
    require(!c.kafka.topics.empty(), "kafka", "topics", "name at least one topic");
  }
  for (const auto& setting : settings())
    if (auto wrong = setting.check ? setting.check(c) : std::string(); !wrong.empty())
      throw ConfigError(label(setting.section, setting.key) + ": " + wrong);
  // No inline door without a caller's secret: a token shorter than this is guessable.
  require(c.decisions.listen.empty() || c.decisions.token.size() >= 16, "decisions", "token",
          "required (16 characters at least) when decisions.listen is set; give it as a file in "
          "FRAUD_DECISIONS_TOKEN_FILE");
  // The guarantees rest on these; a pass-through property must not quietly undo them.
  // Offsets commit only after the database does and start where the database says; the
  // assignor is the one whose rebalances the batch loop is built and tested for.
  for (const char* owned : {"enable.auto.commit", "enable.auto.offset.store", "group.id", "bootstrap.servers",
                            "auto.offset.reset", "partition.assignment.strategy"})
    if (c.kafka.properties.count(owned))
      throw ConfigError(std::string("kafka.properties.") + owned + ": set by the service itself; remove it");
}

}  // namespace

Config load_config(const std::string& path, const Environment& env, ConfigUse use) {
  Config config;
  if (!path.empty()) read_file(config, path);
  read_environment(config, env);
  validate(config, use);
  return config;
}

events::DecodeLimits LimitsConfig::decode() const {
  return {static_cast<std::size_t>(max_record_bytes), static_cast<std::size_t>(max_json_depth),
          static_cast<std::size_t>(max_string_bytes)};
}

rules::RuleLimits LimitsConfig::rules() const {
  return {static_cast<std::size_t>(max_rules), static_cast<std::size_t>(max_features),
          static_cast<std::size_t>(max_expression_length), static_cast<std::size_t>(max_expression_depth)};
}

}  // namespace fraud::consumer
