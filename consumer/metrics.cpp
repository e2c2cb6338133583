#include "consumer/metrics.h"

#include <chrono>

#include "rules/rule_set.h"

namespace fraud::consumer {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

Histogram::BucketBoundaries seconds_buckets() {
  return {0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05,
          0.075, 0.1,    0.25,  0.5,    1,    2.5,   5,    10,   30,   60};
}

}  // namespace

ServiceMetrics::ServiceMetrics(prometheus::Registry& r)
    : records_family(
          BuildCounter()
              .Name("fraud_records_total")
              .Help("Kafka records consumed and committed, by topic and outcome (processed, duplicate, rejected)")
              .Register(r)),
      alerts_family(BuildCounter()
                        .Name("fraud_alerts_total")
                        .Help("Alerts raised by live rules, by rule and the event's decision")
                        .Register(r)),
      shadow_family(BuildCounter()
                        .Name("fraud_shadow_rule_hits_total")
                        .Help("Shadow rules that fired: recorded, kept out of decisions")
                        .Register(r)),
      suppressed_family(BuildCounter()
                            .Name("fraud_suppressed_rule_hits_total")
                            .Help("Rules whose condition held but a suppression silenced for the account")
                            .Register(r)),
      retries_family(BuildCounter()
                         .Name("fraud_database_retries_total")
                         .Help("Batches retried after a database error that is not one record's fault, by reason")
                         .Register(r)),
      rebalances_family(BuildCounter()
                            .Name("fraud_rebalances_total")
                            .Help("Consumer group rebalance callbacks, by kind (assign, revoke, lost)")
                            .Register(r)),
      lag_family(
          BuildGauge()
              .Name("fraud_consumer_lag")
              .Help("Records between the partition's end and the group's committed offset (librdkafka statistics)")
              .Register(r)),
      committed_family(BuildGauge()
                           .Name("fraud_committed_offset")
                           .Help("The group's committed offset per partition (librdkafka statistics)")
                           .Register(r)),
      rule_set_family(
          BuildGauge().Name("fraud_rule_set_info").Help("The active rule set version (value 1)").Register(r)),
      reloads_family(BuildCounter().Name("fraud_rule_reloads_total").Help("Rule file reloads, by result").Register(r)),
      batch_records(BuildHistogram()
                        .Name("fraud_batch_records")
                        .Help("Records per committed batch")
                        .Register(r)
                        .Add({}, Histogram::BucketBoundaries{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000})),
      batch_seconds(BuildHistogram()
                        .Name("fraud_batch_duration_seconds")
                        .Help("Time to decode and apply one batch, up to its database commit")
                        .Register(r)
                        .Add({}, seconds_buckets())),
      end_to_end_seconds(BuildHistogram()
                             .Name("fraud_end_to_end_latency_seconds")
                             .Help("From the event's recorded_at (else its Kafka timestamp) to the database commit")
                             .Register(r)
                             .Add({}, seconds_buckets())),
      rule_evaluation_seconds(BuildHistogram()
                                  .Name("fraud_rule_evaluation_seconds")
                                  .Help("Time spent evaluating rules, per batch")
                                  .Register(r)
                                  .Add({}, Histogram::BucketBoundaries{0.00001, 0.0001, 0.001, 0.01, 0.1, 1})),
      assigned_partitions(
          BuildGauge().Name("fraud_assigned_partitions").Help("Partitions this replica owns").Register(r).Add({})),
      fenced_batches(BuildCounter()
                         .Name("fraud_fenced_batches_total")
                         .Help("Batches rolled back because another replica owns the partition")
                         .Register(r)
                         .Add({})),
      duplicate_conflicts(BuildCounter()
                              .Name("fraud_duplicate_conflicts_total")
                              .Help("Copies of an applied event id whose content differs from the applied one "
                                    "(not applied; rows in duplicate_conflicts)")
                              .Register(r)
                              .Add({})),
      reconnects(BuildCounter()
                     .Name("fraud_database_reconnects_total")
                     .Help("New database connections after one was lost")
                     .Register(r)
                     .Add({})),
      brokers_up(BuildGauge()
                     .Name("fraud_kafka_brokers_up")
                     .Help("Kafka brokers this replica is connected to (librdkafka statistics)")
                     .Register(r)
                     .Add({})),
      ready(BuildGauge()
                .Name("fraud_ready")
                .Help("1 when /readyz would answer 200: database, brokers, group membership, batch loop")
                .Register(r)
                .Add({})) {
  BuildGauge()
      .Name("fraud_build_info")
      .Help("The build of this replica (value 1)")
      .Register(r)
      .Add({{"version", FRAUD_VERSION}})
      .Set(1);
}

void ServiceMetrics::initialise_rules(const std::vector<std::pair<std::string, bool>>& rules) {
  for (const auto& [rule, shadow] : rules) {
    if (rule != rules::kMissingRateRule) suppressed_hits(rule);
    if (shadow) shadow_hits(rule);
    else
      for (const char* decision : {"allow", "review", "block"}) alerts(rule, decision);
  }
}

void ServiceMetrics::initialise(const std::vector<std::string>& topics) {
  for (const auto& topic : topics)
    for (const char* outcome : {"processed", "duplicate", "rejected"}) records(topic, outcome);
  // The named labels DatabaseError gives retried failures (store/database_error.cpp).
  for (const char* reason : {"connection", "shutdown", "serialization", "deadlock", "resources", "lock_timeout",
                             "in_doubt", "statement_timeout", "privilege", "system", "record", "other"})
    database_retries(reason);
  for (const char* kind : {"assign", "revoke", "lost"}) rebalances(kind);
  for (const char* result : {"ok", "failed"}) rule_reloads(result);
}

prometheus::Counter& ServiceMetrics::records(const std::string& topic, const char* outcome) {
  return records_family.Add({{"topic", topic}, {"outcome", outcome}});
}

prometheus::Counter& ServiceMetrics::alerts(const std::string& rule, const std::string& decision) {
  return alerts_family.Add({{"rule", rule}, {"decision", decision}});
}

prometheus::Counter& ServiceMetrics::shadow_hits(const std::string& rule) {
  return shadow_family.Add({{"rule", rule}});
}

prometheus::Counter& ServiceMetrics::suppressed_hits(const std::string& rule) {
  return suppressed_family.Add({{"rule", rule}});
}

prometheus::Counter& ServiceMetrics::database_retries(const std::string& reason) {
  return retries_family.Add({{"reason", reason}});
}

prometheus::Counter& ServiceMetrics::rebalances(const char* kind) { return rebalances_family.Add({{"kind", kind}}); }

prometheus::Counter& ServiceMetrics::rule_reloads(const char* result) {
  return reloads_family.Add({{"result", result}});
}

prometheus::Gauge& ServiceMetrics::consumer_lag(const std::string& topic, std::int32_t partition) {
  return lag_family.Add({{"topic", topic}, {"partition", std::to_string(partition)}});
}

prometheus::Gauge& ServiceMetrics::committed_offset(const std::string& topic, std::int32_t partition) {
  return committed_family.Add({{"topic", topic}, {"partition", std::to_string(partition)}});
}

void ServiceMetrics::forget_partition(const std::string& topic, std::int32_t partition) {
  lag_family.Remove(&consumer_lag(topic, partition));
  committed_family.Remove(&committed_offset(topic, partition));
}

void ServiceMetrics::set_rule_set(const std::string& version) {
  if (rule_set_) rule_set_family.Remove(rule_set_);
  rule_set_ = &rule_set_family.Add({{"version", version}});
  rule_set_->Set(1);
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace fraud::consumer
