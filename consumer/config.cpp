#include "consumer/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>

#include <unistd.h>

#include "dedup/batch_store.h"
#include "rules/file_position.h"

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

/// One configurable value: where it lives and how it is stored into the struct.
struct Field {
  std::string section, key;
  std::function<void(Config&, const std::string& text, const std::string& where)> set;
};

const std::vector<Field>& fields() {
  static const std::vector<Field> table = {
      {"kafka", "bootstrap_servers", [](Config& c, const std::string& v, auto&) { c.kafka.bootstrap_servers = v; }},
      {"kafka", "group_id", [](Config& c, const std::string& v, auto&) { c.kafka.group_id = v; }},
      {"kafka", "topics", [](Config& c, const std::string& v, auto&) { c.kafka.topics = split_list(v); }},
      {"postgres", "url", [](Config& c, const std::string& v, auto&) { c.postgres.url = v; }},
      {"postgres", "migration_url", [](Config& c, const std::string& v, auto&) { c.postgres.migration_url = v; }},
      {"batch", "max_records", [](Config& c, const std::string& v, auto& w) { c.batch.max_records = to_int(v, w); }},
      {"batch", "max_wait_ms", [](Config& c, const std::string& v, auto& w) { c.batch.max_wait_ms = to_int(v, w); }},
      {"limits", "max_record_bytes",
       [](Config& c, const std::string& v, auto& w) { c.limits.max_record_bytes = to_int(v, w); }},
      {"limits", "max_json_depth",
       [](Config& c, const std::string& v, auto& w) { c.limits.max_json_depth = to_int(v, w); }},
      {"limits", "max_string_bytes",
       [](Config& c, const std::string& v, auto& w) { c.limits.max_string_bytes = to_int(v, w); }},
      {"limits", "max_rules", [](Config& c, const std::string& v, auto& w) { c.limits.max_rules = to_int(v, w); }},
      {"limits", "max_features",
       [](Config& c, const std::string& v, auto& w) { c.limits.max_features = to_int(v, w); }},
      {"limits", "max_expression_length",
       [](Config& c, const std::string& v, auto& w) { c.limits.max_expression_length = to_int(v, w); }},
      {"limits", "max_expression_depth",
       [](Config& c, const std::string& v, auto& w) { c.limits.max_expression_depth = to_int(v, w); }},
      {"rules", "file", [](Config& c, const std::string& v, auto&) { c.rules.file = v; }},
      {"rules", "watch_interval_ms",
       [](Config& c, const std::string& v, auto& w) { c.rules.watch_interval_ms = to_int(v, w); }},
      {"retention", "days", [](Config& c, const std::string& v, auto& w) { c.retention.days = to_int(v, w); }},
      {"retention", "days_ahead",
       [](Config& c, const std::string& v, auto& w) { c.retention.days_ahead = to_int(v, w); }},
      {"outbox", "alerts_topic", [](Config& c, const std::string& v, auto&) { c.outbox.alerts_topic = v; }},
      {"outbox", "dead_letter_topic", [](Config& c, const std::string& v, auto&) { c.outbox.dead_letter_topic = v; }},
      {"shutdown", "timeout_seconds",
       [](Config& c, const std::string& v, auto& w) { c.shutdown.timeout_seconds = to_int(v, w); }},
      {"metrics", "listen", [](Config& c, const std::string& v, auto&) { c.metrics.listen = v; }},
      {"health", "max_rebalance_seconds",
       [](Config& c, const std::string& v, auto& w) { c.health.max_rebalance_seconds = to_int(v, w); }},
      {"log", "level", [](Config& c, const std::string& v, auto&) { c.log.level = v; }},
  };
  return table;
}

const Field* find_field(const std::string& section, const std::string& key) {
  for (const auto& f : fields())
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
      const Field* field = find_field(name, key);
      if (!field) throw ConfigError(where + ": unknown setting");
      field->set(config, scalar_text(entry.second, where), where);
    }
  }
}

/// The content of a secret file named by a `…_FILE` variable, without its final newlines:
/// how container platforms hand out secrets, so a password need not sit in the environment.
std::string secret_from_file(const std::string& variable, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(variable + ": the file '" + path + "' cannot be read");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// FRAUD_KAFKA_PROPERTIES_SESSION_TIMEOUT_MS sets the librdkafka property session.timeout.ms;
// FRAUD_KAFKA_PROPERTIES_SASL_PASSWORD_FILE sets sasl.password from a file.
void read_property_overrides(Config& config, const Environment& env) {
  static constexpr std::string_view kPrefix = "FRAUD_KAFKA_PROPERTIES_";
  for (const auto& [variable, given] : env) {
    if (!variable.starts_with(kPrefix)) continue;
    std::string name = variable.substr(kPrefix.size());
    std::string value = given;
    if (name.ends_with("_FILE")) {
      name.resize(name.size() - 5);
      value = secret_from_file(variable, given);
    }
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return c == '_' ? '.' : static_cast<char>(std::tolower(c)); });
    config.kafka.properties[name] = value;
  }
}

void read_environment(Config& config, const Environment& env) {
  for (const auto& f : fields()) {
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
  require(c.postgres.url.starts_with("postgresql://") || c.postgres.url.starts_with("postgres://"), "postgres", "url",
          c.postgres.url.empty() ? "required, a libpq URI such as postgresql://user@host:5432/db"
                                 : "must be a libpq URI starting with postgresql://");
  require(c.postgres.migration_url.empty() || c.postgres.migration_url.starts_with("postgresql://") ||
              c.postgres.migration_url.starts_with("postgres://"),
          "postgres", "migration_url", "must be empty (use url) or a libpq URI starting with postgresql://");
  static_assert(100000 < dedup::kAppliedSeqPerBatch, "a batch's events are numbered below kAppliedSeqPerBatch");
  require(c.batch.max_records >= 1 && c.batch.max_records <= 100000, "batch", "max_records", "must be 1..100000");
  require(c.batch.max_wait_ms >= 0 && c.batch.max_wait_ms <= 60000, "batch", "max_wait_ms", "must be 0..60000");
  require(c.limits.max_record_bytes >= 256 && c.limits.max_record_bytes <= (64 << 20), "limits", "max_record_bytes",
          "must be 256..67108864");
  require(c.limits.max_json_depth >= 4 && c.limits.max_json_depth <= 1024, "limits", "max_json_depth",
          "must be 4..1024");
  require(c.limits.max_string_bytes >= 64 && c.limits.max_string_bytes <= (1 << 20), "limits", "max_string_bytes",
          "must be 64..1048576");
  require(c.limits.max_rules >= 1 && c.limits.max_rules <= 100000, "limits", "max_rules", "must be 1..100000");
  // The feature engine keeps one bit per feature for `where` filters (rules/features.h).
  require(c.limits.max_features >= 0 && c.limits.max_features <= 64, "limits", "max_features", "must be 0..64");
  require(c.limits.max_expression_length >= 16 && c.limits.max_expression_length <= (1 << 20), "limits",
          "max_expression_length", "must be 16..1048576");
  // The parser recurses once per level: the upper bound keeps a hostile file off the stack's end.
  require(c.limits.max_expression_depth >= 4 && c.limits.max_expression_depth <= 256, "limits", "max_expression_depth",
          "must be 4..256");
  // Two days at least: prune keeps one day beyond the window for clock skew.
  require(c.retention.days == 0 || (c.retention.days >= 2 && c.retention.days <= 36500), "retention", "days",
          "must be 0 (keep everything) or 2..36500");
  require(c.retention.days_ahead >= 1 && c.retention.days_ahead <= 366, "retention", "days_ahead", "must be 1..366");
  require(!c.rules.file.empty(), "rules", "file", "required: the path of the rule file");
  require(c.rules.watch_interval_ms >= 0, "rules", "watch_interval_ms", "must be 0 (off) or more");
  require(std::set<std::string>{"debug", "info", "warn", "error"}.count(c.log.level) == 1, "log", "level",
          "must be debug, info, warn or error");
  require(c.shutdown.timeout_seconds >= 1 && c.shutdown.timeout_seconds <= 600, "shutdown", "timeout_seconds",
          "must be 1..600");
  require(c.metrics.listen.rfind(':') != std::string::npos && c.metrics.listen.rfind(':') + 1 < c.metrics.listen.size(),
          "metrics", "listen", "must be host:port, e.g. 0.0.0.0:9464");
  require(c.health.max_rebalance_seconds >= 1, "health", "max_rebalance_seconds", "must be at least 1");
  require(!c.outbox.alerts_topic.empty(), "outbox", "alerts_topic", "must not be empty");
  require(!c.outbox.dead_letter_topic.empty(), "outbox", "dead_letter_topic", "must not be empty");
  // The guarantees rest on these; a pass-through property must not quietly undo them.
  // Offsets commit only after the database does and start where the database says; the
  // assignor is the one whose rebalances the batch loop is built and tested for.
  for (const char* owned : {"enable.auto.commit", "enable.auto.offset.store", "group.id", "bootstrap.servers",
                            "auto.offset.reset", "partition.assignment.strategy"})
    if (c.kafka.properties.count(owned))
      throw ConfigError(std::string("kafka.properties.") + owned + ": set by the service itself; remove it");
}

}  // namespace

Environment process_environment() {
  Environment env;
  for (char** entry = ::environ; *entry; ++entry) {
    std::string_view item(*entry);
    auto eq = item.find('=');
    if (eq != std::string_view::npos) env.emplace(item.substr(0, eq), item.substr(eq + 1));
  }
  return env;
}

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
