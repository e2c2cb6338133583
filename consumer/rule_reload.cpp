#include "consumer/rule_reload.h"

#include "ops/log.h"

namespace fraud::consumer {

namespace log = ops::log;

RuleReloader::RuleReloader(std::string path, rules::RuleLimits limits, std::chrono::milliseconds watch,
                           const std::atomic<unsigned>& requests, ServiceMetrics& metrics)
    : path_(std::move(path)), limits_(limits), watch_(watch), requests_(requests), seen_requests_(requests.load()),
      metrics_(metrics) {}

std::shared_ptr<const rules::RuleSet> RuleReloader::load_initial() {
  std::error_code ec;
  last_write_ = std::filesystem::last_write_time(path_, ec);
  auto rules = std::make_shared<const rules::RuleSet>(rules::RuleSet::load(path_, limits_));
  metrics_.set_rule_set(rules->version());
  metrics_.initialise_rules(rules->rule_ids());
  return rules;
}

void RuleReloader::check(BatchLoop& loop) {
  if (auto requests = requests_.load(); requests != seen_requests_) {
    seen_requests_ = requests;
    reload(loop, "SIGHUP");
  } else if (watch_.count() > 0 && file_changed()) {
    reload(loop, "file changed");
  }
}

bool RuleReloader::file_changed() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_look_) return false;
  next_look_ = now + watch_;
  std::error_code ec;
  auto write = std::filesystem::last_write_time(path_, ec);
  if (ec || write == last_write_) return false;
  last_write_ = write;
  return true;
}

void RuleReloader::reload(BatchLoop& loop, const char* why) {
  try {
    auto rules = std::make_shared<const rules::RuleSet>(rules::RuleSet::load(path_, limits_));
    metrics_.set_rule_set(rules->version());
    metrics_.initialise_rules(rules->rule_ids());
    metrics_.rule_reloads("ok").Increment();
    log::info("rules reloaded", {{"file", path_}, {"version", rules->version()}, {"trigger", why}});
    if (also_) also_(rules);
    loop.set_rules(std::move(rules));
  } catch (const rules::RuleFileError& e) {
    metrics_.rule_reloads("failed").Increment();
    std::string all;
    for (const auto& error : e.errors) all += (all.empty() ? "" : "\n") + error;
    log::error("rule file rejected; the active rules stay", {{"file", path_}, {"trigger", why}, {"errors", all}});
  }
}

}  // namespace fraud::consumer
