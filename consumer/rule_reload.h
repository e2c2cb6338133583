#pragma once
// Hot reload of the rule file: on SIGHUP, and when the file's modification time changes.
// A file that does not load changes nothing: the error goes to the log and to
// fraud_rule_reloads_total{result="failed"}, and the active rules stay.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "consumer/batch_loop.h"
#include "consumer/metrics.h"
#include "rules/rule_set.h"

namespace fraud::consumer {

class RuleReloader {
 public:
  /// `requests` counts SIGHUPs (the handler increments it); `watch` is how often to look at
  /// the file (zero: only on SIGHUP).
  RuleReloader(std::string path, rules::RuleLimits limits, std::chrono::milliseconds watch,
               const std::atomic<unsigned>& requests, ServiceMetrics& metrics);

  /// Loads the file as start-up does; throws rules::RuleFileError.
  std::shared_ptr<const rules::RuleSet> load_initial();

  /// Reloads into `loop` if asked to or if the file changed. Call on the polling thread.
  void check(BatchLoop& loop);

  /// Hands each reloaded rule set to `use` as well (the inline door's desk).
  void also_to(std::function<void(std::shared_ptr<const rules::RuleSet>)> use) { also_ = std::move(use); }

 private:
  bool file_changed();
  void reload(BatchLoop& loop, const char* why);

  std::string path_;
  rules::RuleLimits limits_;
  std::chrono::milliseconds watch_;
  const std::atomic<unsigned>& requests_;
  unsigned seen_requests_ = 0;
  ServiceMetrics& metrics_;
  std::filesystem::file_time_type last_write_{};
  std::chrono::steady_clock::time_point next_look_{};
  std::function<void(std::shared_ptr<const rules::RuleSet>)> also_;
};

}  // namespace fraud::consumer
