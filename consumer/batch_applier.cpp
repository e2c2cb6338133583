#include "consumer/batch_applier.h"

#include <chrono>

namespace fraud::consumer {

BatchResult& BatchResult::operator+=(const BatchResult& other) {
  fenced = fenced || other.fenced;
  processed += other.processed, duplicates += other.duplicates, rejected += other.rejected;
  duplicate_conflicts += other.duplicate_conflicts, alerts += other.alerts;
  alert_labels.insert(alert_labels.end(), other.alert_labels.begin(), other.alert_labels.end());
  applied_origins.insert(applied_origins.end(), other.applied_origins.begin(), other.applied_origins.end());
  rule_seconds += other.rule_seconds;
  return *this;
}

BatchApplier::BatchApplier(std::string postgres_url, std::string group_id, std::string owner,
                           store::OutboxTopics topics)
    : store_(std::move(postgres_url), std::move(group_id), std::move(owner), std::move(topics)) {}

store::Claim BatchApplier::claim(const std::string& topic, std::int32_t partition) {
  return store_.claim(topic, partition);
}

std::optional<int> BatchApplier::release_stalled_owner(const std::string& topic, std::int32_t partition,
                                                       std::chrono::seconds stalled_for) {
  return store_.release_stalled_owner(topic, partition, stalled_for);
}

std::vector<BatchResult> BatchApplier::apply(std::span<const store::PartitionBatch> batches,
                                             rules::FeatureEngine& features) {
  auto open = store_.begin(batches, features);
  open.load(features);
  std::vector<BatchResult> results(batches.size());
  const auto& rules = features.rules();
  auto new_events = open.new_events();
  for (std::size_t i = 0; i < new_events.size(); ++i) {
    const auto& event = *new_events[i].event;
    auto& result = results[new_events[i].batch];
    auto started = std::chrono::steady_clock::now();
    auto values = features.observe(event, &open.first_seen(i));
    auto verdict = rules.evaluate(event, values, &open.lists(), open.lists_as_of());
    result.rule_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (const auto& hit : verdict.hits) {
      result.alert_labels.push_back({hit.rule_id, rules::to_string(verdict.decision), hit.shadow});
      ++result.alerts;
    }
    for (const auto& rule : verdict.suppressed)
      result.alert_labels.push_back({rule, rules::to_string(verdict.decision), false, true});
    open.record(i, std::move(verdict), rules.version());
  }
  auto stored = open.commit();
  for (std::size_t b = 0; b < batches.size(); ++b) static_cast<store::StoredBatch&>(results[b]) = std::move(stored[b]);
  return results;
}

BatchResult BatchApplier::apply(const store::PartitionBatch& batch, rules::FeatureEngine& features) {
  return apply(std::span<const store::PartitionBatch>(&batch, 1), features).front();
}

}  // namespace fraud::consumer
