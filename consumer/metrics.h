#pragma once
// The service's Prometheus metrics. The application owns the registry; components get this
// struct and update the series they are about. Labels are bounded: topics, partitions,
// rules, decisions, reasons; never an event, account or card id.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fraud::consumer {

struct ServiceMetrics {
  explicit ServiceMetrics(prometheus::Registry& registry);

  /// Records consumed, by topic and outcome: processed, duplicate or rejected.
  prometheus::Counter& records(const std::string& topic, const char* outcome);
  /// Alerts raised by live rules, by rule and the event's decision.
  prometheus::Counter& alerts(const std::string& rule, const std::string& decision);
  /// Shadow rules that fired (recorded, kept out of decisions), by rule.
  prometheus::Counter& shadow_hits(const std::string& rule);
  /// Rules whose condition held but an analyst's suppression silenced for the account, by rule.
  prometheus::Counter& suppressed_hits(const std::string& rule);
  prometheus::Counter& database_retries(const std::string& reason);
  prometheus::Counter& rebalances(const char* kind);
  /// Rule file reloads, by result: ok or failed.
  prometheus::Counter& rule_reloads(const char* result);
  prometheus::Gauge& consumer_lag(const std::string& topic, std::int32_t partition);
  prometheus::Gauge& committed_offset(const std::string& topic, std::int32_t partition);
  /// Drops a partition's lag and committed-offset gauges when it leaves this replica: a
  /// frozen value of a partition owned elsewhere would mislead every alert that reads it.
  void forget_partition(const std::string& topic, std::int32_t partition);
  /// Creates every series of the bounded label sets at zero, so dashboards and alerts see
  /// "none yet" as 0 rather than as no data.
  void initialise(const std::vector<std::string>& topics);
  /// Creates the alert series of a rule set's rules at zero: (rule id, shadow) pairs.
  void initialise_rules(const std::vector<std::pair<std::string, bool>>& rules);

  /// Sets the one active rule set version in fraud_rule_set_info.
  void set_rule_set(const std::string& version);

  prometheus::Family<prometheus::Counter>& records_family;
  prometheus::Family<prometheus::Counter>& alerts_family;
  prometheus::Family<prometheus::Counter>& shadow_family;
  prometheus::Family<prometheus::Counter>& suppressed_family;
  prometheus::Family<prometheus::Counter>& retries_family;
  prometheus::Family<prometheus::Counter>& rebalances_family;
  prometheus::Family<prometheus::Gauge>& lag_family;
  prometheus::Family<prometheus::Gauge>& committed_family;
  prometheus::Family<prometheus::Gauge>& rule_set_family;
  prometheus::Family<prometheus::Counter>& reloads_family;
  prometheus::Histogram& batch_records;
  prometheus::Histogram& batch_seconds;
  prometheus::Histogram& end_to_end_seconds;
  prometheus::Histogram& rule_evaluation_seconds;
  prometheus::Gauge& assigned_partitions;
  prometheus::Counter& fenced_batches;
  prometheus::Counter& duplicate_conflicts;
  prometheus::Counter& reconnects;
  prometheus::Gauge& brokers_up;
  prometheus::Gauge& ready;

 private:
  prometheus::Gauge* rule_set_ = nullptr;
};

/// What the health endpoints read; written by the polling thread, read by the HTTP thread.
struct HealthState {
  std::atomic<std::int64_t> loop_heartbeat_ms{0};  ///< steady-clock ms of the last loop turn
  std::atomic<bool> in_group{false};               ///< the consumer has a member id
  std::atomic<std::int64_t> out_of_group_since_ms{0};
  std::atomic<bool> brokers_up{true};
};

/// Milliseconds on the steady clock, the time base of HealthState.
std::int64_t steady_ms();

}  // namespace fraud::consumer
