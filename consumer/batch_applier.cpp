#include "consumer/batch_applier.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>

#include "events/time.h"

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

void count_in(ServiceMetrics& metrics, const std::string& topic, const BatchResult& result) {
  metrics.records(topic, "processed").Increment(static_cast<double>(result.processed));
  metrics.records(topic, "duplicate").Increment(static_cast<double>(result.duplicates));
  metrics.records(topic, "rejected").Increment(static_cast<double>(result.rejected));
  metrics.duplicate_conflicts.Increment(static_cast<double>(result.duplicate_conflicts));
  metrics.rule_evaluation_seconds.Observe(result.rule_seconds);
  for (const auto& alert : result.alert_labels) {
    if (alert.suppressed) metrics.suppressed_hits(alert.rule).Increment();
    else if (alert.shadow) metrics.shadow_hits(alert.rule).Increment();
    else metrics.alerts(alert.rule, alert.decision).Increment();
  }
  auto now_us = events::wall_clock_now();
  for (auto origin : result.applied_origins)
    metrics.end_to_end_seconds.Observe(static_cast<double>(std::max<std::int64_t>(0, now_us - origin)) / 1e6);
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

namespace {

// New event `i` of `open`: its features observed, the rules' verdict counted in `result` and
// recorded; a copy of the verdict kept in `kept` when one is given. `authorisation`: it came
// through the inline door, before the bank recorded it.
void decide_new_event(store::OpenBatch& open, std::size_t i, rules::FeatureEngine& features, BatchResult& result,
                      rules::Verdict* kept = nullptr, bool authorisation = false) {
  const auto& rules = features.rules();
  const auto& event = *open.new_events()[i].event;
  auto started = std::chrono::steady_clock::now();
  auto values = features.values_of(event, &open.first_seen(i));
  auto verdict = rules.evaluate(event, values, &open.lists(), open.lists_as_of());
  result.rule_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  for (const auto& hit : verdict.hits) {
    result.alert_labels.push_back({hit.rule_id, rules::to_string(verdict.decision), hit.shadow});
    ++result.alerts;
  }
  for (const auto& rule : verdict.suppressed)
    result.alert_labels.push_back({rule, rules::to_string(verdict.decision), false, true});
  if (kept) *kept = verdict;
  // An authorisation blocked is one the bank declines: its outbox never publishes it, and it
  // stays in the history as an attempt whose money never moved (docs/DECISIONS.md).
  bool declined = authorisation && verdict.decision == rules::Decision::block;
  features.add(event, declined);
  open.record(i, std::move(verdict), rules.version(), declined);
}

// The answer of a request this transaction decided.
InlineAnswer answer_of(const rules::Verdict& verdict, std::int64_t digest, const std::string& rule_set_version) {
  InlineAnswer answer{
      true, digest, store::kInlineTopic, rules::to_string(verdict.decision), verdict.score, rule_set_version, {}};
  for (const auto& hit : verdict.hits)
    if (!hit.shadow) answer.hits.push_back(hit);
  return answer;
}

}  // namespace

std::vector<BatchResult> BatchApplier::apply(std::span<const store::PartitionBatch> batches,
                                             rules::FeatureEngine& features) {
  auto open = store_.begin(batches, features);
  open.load(features);
  std::vector<BatchResult> results(batches.size());
  auto new_events = open.new_events();
  for (std::size_t i = 0; i < new_events.size(); ++i) decide_new_event(open, i, features, results[new_events[i].batch]);
  auto stored = open.commit();
  for (std::size_t b = 0; b < batches.size(); ++b) static_cast<store::StoredBatch&>(results[b]) = std::move(stored[b]);
  return results;
}

BatchResult BatchApplier::apply(const store::PartitionBatch& batch, rules::FeatureEngine& features) {
  return apply(std::span<const store::PartitionBatch>(&batch, 1), features).front();
}

std::vector<InlineAnswer> BatchApplier::decide(const store::PartitionBatch& requests, rules::FeatureEngine& features,
                                               BatchResult& result, const std::function<bool()>& may_commit) {
  auto open = store_.begin(std::span<const store::PartitionBatch>(&requests, 1), features);
  // The new identities, by key, and the others: applied before this transaction, or earlier in it.
  std::map<std::string, std::size_t> new_index;
  for (std::size_t i = 0; i < open.new_events().size(); ++i) {
    const auto& e = *open.new_events()[i].event;
    new_index[store::dedup_key(e.source, e.event_id)] = i;
  }
  std::vector<const events::Event*> again;
  std::vector<std::size_t> again_of;  // per request: its index in `again`, when it is there
  for (const auto& r : requests.records) {
    again_of.push_back(again.size());
    if (!new_index.count(store::dedup_key(r.event->source, r.event->event_id))) again.push_back(&*r.event);
  }
  auto priors = open.prior_decisions(again);
  open.load(features);
  std::vector<rules::Verdict> verdicts(open.new_events().size());
  for (std::size_t i = 0; i < verdicts.size(); ++i) decide_new_event(open, i, features, result, &verdicts[i], true);
  const auto& version = features.rules().version();
  if (may_commit && !may_commit()) return {};  // rolled back as `open` goes
  static_cast<store::StoredBatch&>(result) = std::move(open.commit().front());

  std::vector<InlineAnswer> answers;
  std::map<std::size_t, std::int64_t> leader_digest;  // per new event: the digest its request was applied with
  for (std::size_t k = 0; k < requests.records.size(); ++k) {
    const auto& r = requests.records[k];
    auto key = store::dedup_key(r.event->source, r.event->event_id);
    auto found = new_index.find(key);
    if (found != new_index.end() && !leader_digest.count(found->second)) {  // the request that applied it
      leader_digest[found->second] = r.record.offset;
      answers.push_back(answer_of(verdicts[found->second], r.record.offset, version));
    } else if (found != new_index.end()) {  // a second request of an identity this transaction applied
      answers.push_back(answer_of(verdicts[found->second], leader_digest[found->second], version));
      answers.back().decided_now = false;
    } else if (const auto& prior = priors[again_of[k]]) {
      InlineAnswer stored;
      stored.applied_digest = prior->body_digest, stored.first_topic = prior->first_topic;
      stored.decision = prior->decision, stored.score = prior->score;
      stored.rule_set_version = prior->rule_set_version, stored.hits = prior->hits;
      answers.push_back(std::move(stored));
    } else {
      throw std::logic_error("an inline request that is neither new nor stored");
    }
  }
  return answers;
}

}  // namespace fraud::consumer
