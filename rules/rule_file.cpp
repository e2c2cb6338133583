// The rule file reader: YAML in, a RuleSet out, or every error of the file, each located
// ("rules.yaml:12:11: rule 'x': ..."), rather than only the first.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "events/money.h"
#include "rules/file_position.h"
#include "rules/rule_set.h"

namespace fraud::rules {

namespace {

/// Key fields by their names in rule files (key_field.h), for lookup().
const auto kKeys = [] {
  std::array<std::pair<const char*, KeyField>, std::size(kKeyFieldSpecs)> keys{};
  for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = {kKeyFieldSpecs[i].name.data(), kKeyFieldSpecs[i].field};
  return keys;
}();

constexpr std::pair<const char*, Aggregate> kAggregates[] = {{"count", Aggregate::count},
                                                             {"sum", Aggregate::sum},
                                                             {"min", Aggregate::min},
                                                             {"max", Aggregate::max},
                                                             {"average", Aggregate::average},
                                                             {"distinct_count", Aggregate::distinct_count},
                                                             {"time_since_last", Aggregate::time_since_last},
                                                             {"first_seen", Aggregate::first_seen},
                                                             {"speed_kmh", Aggregate::speed_kmh}};

}  // namespace

namespace {

std::string hex_hash(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a, 64 bits: stable across builds and hosts
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

}  // namespace

/// Reads one rule file, collecting every error rather than stopping at the first.
class RuleFileReader {
 public:
  RuleFileReader(std::string name, const RuleLimits& limits) : name_(std::move(name)), limits_(limits) {}

  RuleSet read(const std::string& text) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      throw RuleFileError({file_position(name_, e.mark) + ": " + e.msg});
    }
    if (!root.IsMap()) throw RuleFileError({name_ + ":1:1: a rule file is a mapping (version, rules, …)"});
    set_.schema_.max_length = limits_.max_expression_length;
    set_.schema_.max_depth = limits_.max_expression_depth;
    try {
      check_keys(root, {"version", "base_currency", "currency_rates", "missing_rate", "lists", "runtime_lists",
                        "features", "rules", "decision"});
      read_header(root);
      read_lists(root["lists"]);
      read_runtime_lists(root["runtime_lists"]);
      read_features(root["features"]);
      read_rules(root["rules"]);
      read_thresholds(root["decision"]);
    } catch (const YAML::Exception& e) {
      // A shape the readers do not check for (yaml-cpp throws when a node is read as a type it
      // is not; fuzz/regressions/rule_file/ keeps examples): still a located load error, never
      // an exception that would end the service during a reload.
      errors_.push_back(file_position(name_, e.mark) + ": unexpected structure here (" + e.msg + ")");
    }
    if (!errors_.empty()) throw RuleFileError(errors_);
    set_.version_ += "+" + hex_hash(text).substr(0, 12);
    return std::move(set_);
  }

 private:
  std::string at(const YAML::Node& node) const { return file_position(name_, node.Mark()); }
  void error(const YAML::Node& node, const std::string& message) { errors_.push_back(at(node) + ": " + message); }

  void check_keys(const YAML::Node& map, const std::set<std::string>& known) {
    for (const auto& entry : map) {
      auto key = key_of(entry.first);
      if (!known.count(key)) error(entry.first, "unknown key '" + key + "'");
    }
  }

  /// A mapping key as text; a key that is itself a list or mapping is an error.
  std::string key_of(const YAML::Node& key) {
    if (key.IsScalar()) return key.Scalar();
    error(key, "a key must be a plain name");
    return {};
  }

  std::optional<std::string> scalar(const YAML::Node& node, const std::string& what) {
    if (!node || node.IsNull()) return std::nullopt;
    if (!node.IsScalar()) {
      error(node, what + " must be a single value");
      return std::nullopt;
    }
    return node.Scalar();
  }

  void read_header(const YAML::Node& root) {
    auto version = scalar(root["version"], "version");
    if (!version || version->empty()) errors_.push_back(name_ + ":1:1: 'version' is required");
    set_.version_ = version.value_or("");
    set_.base_currency_ = scalar(root["base_currency"], "base_currency").value_or("EUR");
    if (!events::currency_exponent(set_.base_currency_))
      error(root["base_currency"], "'" + set_.base_currency_ + "' is not an ISO 4217 currency");
    set_.rates_[set_.base_currency_] = Decimal::from_int(1);
    if (auto missing = scalar(root["missing_rate"], "missing_rate")) {
      if (*missing == "review") set_.on_missing_rate_ = Decision::review;
      else if (*missing == "block") set_.on_missing_rate_ = Decision::block;
      else if (*missing == "allow") set_.on_missing_rate_ = Decision::allow;
      else error(root["missing_rate"], "missing_rate must be review, block or allow");
    }
    auto rates = root["currency_rates"];
    if (!rates) return;
    if (!rates.IsMap()) return error(rates, "currency_rates maps a currency to its value in the base currency");
    for (const auto& entry : rates) {
      auto code = key_of(entry.first);
      auto rate = Decimal::parse(entry.second.IsScalar() ? entry.second.Scalar() : "");
      if (!events::currency_exponent(code)) error(entry.first, "'" + code + "' is not an ISO 4217 currency");
      else if (!rate || !(Decimal() < *rate))
        error(entry.second, "the rate of " + code + " must be a positive decimal");
      else set_.rates_[code] = *rate;
    }
  }

  void read_lists(const YAML::Node& lists) {
    if (!lists) return;
    if (!lists.IsMap()) return error(lists, "lists maps a name to a list of values");
    for (const auto& entry : lists) {
      auto name = key_of(entry.first);
      if (!entry.second.IsSequence()) {
        error(entry.second, "list '" + name + "' must be a sequence, e.g. [KP, IR]");
        continue;
      }
      auto& values = set_.schema_.lists[name];
      for (const auto& item : entry.second)
        if (auto value = scalar(item, "an item of list '" + name + "'")) values.push_back(*value);
    }
  }

  // Names, each alone or with who may add to it and for how long; the entries live in
  // fraud_list_entries (migrations/0014), whose names follow the same pattern. Not usable in
  // a feature's where: (features do not depend on lists).
  void read_runtime_lists(const YAML::Node& names) {
    if (!names) return;
    if (!names.IsSequence())
      return error(names,
                   "runtime_lists is a sequence of list names, e.g. [deny_cards], or of "
                   "{name, writer: analyst|lead, longest_days}");
    for (const auto& item : names) {
      RuntimeListPolicy policy;
      std::optional<std::string> name;
      if (item.IsMap()) {
        check_keys(item, {"name", "writer", "longest_days"});
        name = scalar(item["name"], "a runtime list's name");
        if (!name) error(item, "a runtime list needs a name");
        for (const char* key : {"writer", "longest_days"})
          if (item[key] && item[key].IsNull()) error(item[key], std::string("a runtime list's ") + key + " is empty");
        if (item["writer"]) {
          auto writer = scalar(item["writer"], "a runtime list's writer");
          if (writer && *writer != "analyst" && *writer != "lead")
            error(item["writer"], "a runtime list's writer is analyst or lead, not '" + *writer + "'");
          policy.leads_only = writer == "lead";
        }
        if (item["longest_days"]) {
          auto days = scalar(item["longest_days"], "a runtime list's longest_days");
          int n = 0;
          if (days &&
              (std::from_chars(days->data(), days->data() + days->size(), n).ptr != days->data() + days->size() ||
               n < 1 || n > 3650))
            error(item["longest_days"], "longest_days is a whole number of days from 1 to 3650");
          else if (days) policy.longest_days = n;
        }
      } else {
        name = scalar(item, "a runtime list's name");
      }
      if (!name) continue;
      bool valid = !name->empty() && name->size() <= 63 && (*name)[0] >= 'a' && (*name)[0] <= 'z';
      for (char c : *name) valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
      if (!valid) error(item, "runtime list name '" + *name + "' must be lowercase letters, digits and _ (at most 63)");
      else if (set_.schema_.lists.count(*name)) error(item, "'" + *name + "' is both a list and a runtime list");
      else if (std::find(set_.schema_.runtime_lists.begin(), set_.schema_.runtime_lists.end(), *name) !=
               set_.schema_.runtime_lists.end())
        error(item, "runtime list '" + *name + "' is declared twice");
      else {
        set_.schema_.runtime_lists.push_back(*name);
        policy.list = *name;
        set_.list_policies_.push_back(std::move(policy));
      }
    }
  }

  template <typename Table>  // pairs of (name, value)
  auto lookup(const Table& table, const YAML::Node& node, const std::string& what)
      -> std::optional<std::remove_cvref_t<decltype(std::begin(table)->second)>> {
    auto text = scalar(node, what);
    if (!text) return std::nullopt;
    for (const auto& [name, value] : table)
      if (*text == name) return value;
    std::string known;
    for (const auto& [name, value] : table) known += (known.empty() ? "" : ", ") + std::string(name);
    error(node, what + " '" + *text + "' is not one of " + known);
    return std::nullopt;
  }

  std::optional<Expression> expression(const YAML::Node& node, const Schema& schema, const std::string& owner) {
    auto text = scalar(node, owner);
    if (!text) return std::nullopt;
    try {
      return Expression::compile(*text, schema);
    } catch (const ExpressionError& e) {
      // Quoted scalars start one column before their text.
      auto offset = std::min(e.offset, text->size());
      auto position = file_position(name_, node.Mark(), offset + (node.Tag() == "!" ? 1 : 0));
      errors_.push_back(position + ": " + owner + ": " + e.what() + "\n    " + text->substr(0, 200) + "\n    " +
                        std::string(offset, ' ') + "^");
      return std::nullopt;
    }
  }

  void read_features(const YAML::Node& features) {
    if (!features) return;
    if (!features.IsMap()) return error(features, "features maps a name to its declaration");
    // Whatever the configured limit, the engine keeps one bit per feature (features.h).
    auto most = std::min<std::size_t>(limits_.max_features, kMaxFeatures);
    if (features.size() > most) error(features, "more than " + std::to_string(most) + " features");
    Schema where_schema{{}, set_.schema_.lists, limits_.max_expression_length, limits_.max_expression_depth};
    for (const auto& entry : features) {
      auto name = key_of(entry.first);
      const auto& spec = entry.second;
      if (!spec.IsMap()) {
        error(spec, "feature '" + name + "' must be a mapping {aggregate: …, key: …}");
        continue;
      }
      check_keys(spec, {"aggregate", "key", "field", "window", "where", "description", "min_km", "min_interval"});
      FeatureSpec f;
      f.name = name;
      auto aggregate = lookup(kAggregates, spec["aggregate"], "feature '" + name + "': aggregate");
      auto key_node = spec["key"];
      std::optional<KeyField> key;
      if (key_node && key_node.IsSequence() && key_node.size() == 2) {
        key = lookup(kKeys, key_node[0], "feature '" + name + "': key");
        f.paired_with = lookup(kKeys, key_node[1], "feature '" + name + "': key");
        if (key && key == f.paired_with)
          error(key_node, "feature '" + name + "': a pair key needs two different fields");
      } else if (key_node && key_node.IsSequence()) {
        error(key_node, "feature '" + name + "': key is one field or a pair, e.g. [account_id, merchant.id]");
        continue;
      } else {
        key = lookup(kKeys, key_node, "feature '" + name + "': key");
      }
      if (!aggregate || !key) {
        if (!spec["aggregate"] || !spec["key"]) error(spec, "feature '" + name + "' needs an aggregate and a key");
        continue;
      }
      f.aggregate = *aggregate;
      f.key = *key;
      check_feature(f, spec, name, where_schema);
      if (find_field_name(name)) error(entry.first, "feature '" + name + "' has the name of an event field");
      set_.schema_.features.emplace_back(name, f.type());
      set_.features_.push_back(std::move(f));
    }
  }

  static bool find_field_name(const std::string& name) {
    for (const auto& [field, type] : event_fields())
      if (field == name) return true;
    return false;
  }

  void check_feature(FeatureSpec& f, const YAML::Node& spec, const std::string& name, const Schema& where_schema) {
    if (f.aggregate == Aggregate::first_seen && !f.paired_with)
      error(spec, "feature '" + name + "': first_seen needs a pair key, e.g. [account_id, counterparty.account]");
    // The latest earlier event of a pair can be older than anything the first field's history
    // holds (it keeps what the windows reach), so these two read one key field.
    if ((f.aggregate == Aggregate::time_since_last || f.aggregate == Aggregate::speed_kmh) && f.paired_with)
      error(spec, "feature '" + name + "': time_since_last and speed_kmh take one key field, not a pair");
    if (windowed(f.aggregate)) {
      auto window = parse_duration(scalar(spec["window"], "window").value_or(""));
      if (!window) error(spec, "feature '" + name + "': window must be a duration such as 10m, 1h, 24h, 30d");
      else f.window_us = *window;
    }
    check_speed_floors(f, spec, name);
    bool numeric = f.aggregate == Aggregate::sum || f.aggregate == Aggregate::min || f.aggregate == Aggregate::max ||
                   f.aggregate == Aggregate::average;
    f.field = scalar(spec["field"], "field").value_or("");
    if (numeric && f.field != "amount" && f.field != "amount_base")
      error(spec, "feature '" + name + "': field must be amount or amount_base");
    if (f.aggregate == Aggregate::distinct_count && !is_string_field(f.field))
      error(spec, "feature '" + name + "': distinct_count needs a string field, e.g. card.fingerprint");
    if (spec["where"]) {
      // Features cannot read features: that is what rules out cycles between them.
      f.where = expression(spec["where"], where_schema, "feature '" + name + "': where");
      if (f.where && f.where->type() != Type::boolean)
        error(spec["where"], "feature '" + name + "': where must be a condition");
    }
  }

  // speed_kmh's floors: a distance below min_km is no travel; a time below min_interval
  // counts as min_interval.
  void check_speed_floors(FeatureSpec& f, const YAML::Node& spec, const std::string& name) {
    if (f.aggregate != Aggregate::speed_kmh) {
      if (spec["min_km"] || spec["min_interval"])
        error(spec, "feature '" + name + "': only speed_kmh takes min_km and min_interval");
      return;
    }
    if (auto km = integer(spec["min_km"], "feature '" + name + "': min_km")) {
      if (*km < 0) error(spec["min_km"], "feature '" + name + "': min_km must not be negative");
      f.min_km = *km;
    }
    if (auto text = scalar(spec["min_interval"], "min_interval")) {
      auto interval = parse_duration(*text);
      if (!interval)
        error(spec["min_interval"], "feature '" + name + "': min_interval must be a duration such as 90s, 10m");
      else f.min_interval_us = *interval;
    }
  }

  static bool is_string_field(const std::string& name) {
    for (const auto& [field, type] : event_fields())
      if (field == name) return type == Type::string;
    return false;
  }

  void read_rules(const YAML::Node& rules) {
    if (!rules || !rules.IsSequence()) return errors_.push_back(name_ + ":1:1: 'rules' must be a list of rules");
    if (rules.size() > limits_.max_rules) error(rules, "more than " + std::to_string(limits_.max_rules) + " rules");
    std::set<std::string> ids;
    for (const auto& spec : rules) {
      if (!spec.IsMap()) {
        error(spec, "a rule is a mapping {id, when, score}");
        continue;
      }
      check_keys(spec, {"id", "description", "when", "score", "action", "mode"});
      auto id = scalar(spec["id"], "id").value_or("");
      if (id.empty()) error(spec, "a rule needs an id");
      else if (!ids.insert(id).second) error(spec["id"], "duplicate rule id '" + id + "'");
      else if (id == kMissingRateRule) error(spec["id"], "rule id '" + id + "' is the built-in rule of missing_rate");
      auto when = expression(spec["when"], set_.schema_, "rule '" + id + "'");
      if (!spec["when"]) error(spec, "rule '" + id + "' needs a 'when' condition");
      if (when && when->type() != Type::boolean && when->type() != Type::any)
        error(spec["when"],
              "rule '" + id + "': 'when' must be a condition, not " + std::string(to_string(when->type())));
      auto rule = read_rule_fields(spec, id);
      if (!when || !rule) continue;
      rule->when = std::move(*when);
      set_.rules_.push_back(std::move(*rule));
    }
  }

  /// A whole number, all of the scalar and nothing else ("12.5", "40abc" and "1e3" are
  /// refused), within ±1,000,000; an error at the node's line and column otherwise.
  std::optional<int> integer(const YAML::Node& node, const std::string& what) {
    auto text = scalar(node, what);
    if (!text) return std::nullopt;
    int value = 0;
    const char* end = text->data() + text->size();
    auto [stop, status] = std::from_chars(text->data(), end, value);
    if (status != std::errc() || stop != end || value < -1'000'000 || value > 1'000'000) {
      error(node, what + " must be a whole number between -1000000 and 1000000, not '" + *text + "'");
      return std::nullopt;
    }
    return value;
  }

  std::optional<Rule> read_rule_fields(const YAML::Node& spec, const std::string& id) {
    Rule rule{id,   scalar(spec["description"], "description").value_or(""), Expression::compile("true", {}), 0, {},
              false};
    if (spec["score"]) {
      auto score = integer(spec["score"], "rule '" + id + "': score");
      if (!score) return std::nullopt;
      rule.score = *score;
    }
    if (auto action = scalar(spec["action"], "action")) {
      if (*action == "review") rule.action = Decision::review;
      else if (*action == "block") rule.action = Decision::block;
      else return error(spec["action"], "rule '" + id + "': action must be review or block"), std::nullopt;
    }
    auto mode = scalar(spec["mode"], "mode").value_or("live");
    if (mode != "live" && mode != "shadow")
      return error(spec["mode"], "rule '" + id + "': mode must be live or shadow"), std::nullopt;
    rule.shadow = mode == "shadow";
    return rule;
  }

  void read_thresholds(const YAML::Node& decision) {
    if (!decision || !decision.IsMap())
      return errors_.push_back(name_ + ":1:1: 'decision' needs review_at and block_at scores");
    check_keys(decision, {"review_at", "block_at"});
    auto review = integer(decision["review_at"], "decision.review_at");
    auto block = integer(decision["block_at"], "decision.block_at");
    if (!decision["review_at"] || !decision["block_at"])
      return error(decision, "'decision' needs review_at and block_at scores");
    if (!review || !block) return;
    set_.review_at_ = *review, set_.block_at_ = *block;
    if (set_.block_at_ < set_.review_at_) error(decision, "block_at must not be below review_at");
  }

  std::string name_;
  RuleLimits limits_;
  RuleSet set_;
  std::vector<std::string> errors_;
};

RuleSet RuleSet::parse(const std::string& text, const std::string& name, const RuleLimits& limits) {
  return RuleFileReader(name, limits).read(text);
}

RuleSet RuleSet::load(const std::string& path, const RuleLimits& limits) {
  std::ifstream in(path);
  if (!in) throw RuleFileError({path + ": cannot be read"});
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path, limits);
}

}  // namespace fraud::rules
