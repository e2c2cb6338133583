#pragma once
// A batch's way through the rules and the store: the store opens the transaction and
// separates the new events, the features observe each one and the rules decide it, the store
// records the verdicts and commits. What the batch loop needs of the database is the seam
// BatchWriter, which its unit tests fake.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "consumer/metrics.h"
#include "rules/features.h"
#include "rules/rule_set.h"
#include "store/batch_store.h"

namespace fraud::consumer {

/// The labels of one rule hit, for metrics.
struct AlertLabel {
  std::string rule;
  std::string decision;
  bool shadow = false;
  bool suppressed = false;  ///< not an alert: the rule held but a suppression silenced it
};

/// What one committed (or fenced) batch stored, and what its rules decided.
struct BatchResult : store::StoredBatch {
  std::size_t alerts = 0;
  std::vector<AlertLabel> alert_labels;  ///< one per rule hit, live or shadow, or suppressed
  double rule_seconds = 0;               ///< time spent observing and evaluating

  BatchResult& operator+=(const BatchResult& other);
};

/// Counts what a committed batch (or the inline door's transaction) of `topic` stored and decided.
void count_in(ServiceMetrics& metrics, const std::string& topic, const BatchResult& result);

/// What the inline door's transaction made of one request (BatchApplier::decide).
struct InlineAnswer {
  bool decided_now = false;  ///< this transaction applied it; else it was applied before
  /// The applied copy's body digest: another than the request's is a conflict. Empty when the
  /// copy was applied before digests were kept (migration 0007).
  std::optional<std::int64_t> applied_digest;
  std::string first_topic;              ///< where the applied copy came first (store::kInlineTopic: this door)
  std::optional<std::string> decision;  ///< empty: applied so long ago that its decision is no longer kept
  int score = 0;
  std::string rule_set_version;
  std::vector<rules::RuleHit> hits;  ///< the live rules that fired, with their explanations
};

/// What the batch loop needs of the database. Every call throws postgres::DatabaseError on failure.
class BatchWriter {
 public:
  virtual ~BatchWriter() = default;

  /// Takes ownership of a partition for this group (store::BatchStore::claim).
  virtual store::Claim claim(const std::string& topic, std::int32_t partition) = 0;

  /// Ends the database session of a stalled earlier owner (store::BatchStore::release_stalled_owner).
  virtual std::optional<int> release_stalled_owner(const std::string& topic, std::int32_t partition,
                                                   std::chrono::seconds stalled_for) = 0;

  /// Applies `batches` (each of another partition) in one transaction, one result each; a
  /// fenced batch writes nothing, the others commit together. After a throw or a fenced
  /// result, `features` holds state that was never committed: the caller must forget it.
  virtual std::vector<BatchResult> apply(std::span<const store::PartitionBatch> batches,
                                         rules::FeatureEngine& features) = 0;
};

/// The service's BatchWriter: a store of its own, and the rules of `features` deciding each
/// new event between the store's stages, batch after batch in the order given.
class BatchApplier final : public BatchWriter {
 public:
  BatchApplier(std::string postgres_url, std::string group_id, std::string owner, store::OutboxTopics topics);

  store::Claim claim(const std::string& topic, std::int32_t partition) override;
  std::optional<int> release_stalled_owner(const std::string& topic, std::int32_t partition,
                                           std::chrono::seconds stalled_for) override;
  std::vector<BatchResult> apply(std::span<const store::PartitionBatch> batches,
                                 rules::FeatureEngine& features) override;

  /// Applies one batch alone.
  BatchResult apply(const store::PartitionBatch& batch, rules::FeatureEngine& features);

  /// Applies the inline door's `requests` (partition store::kInlinePartition, every record an
  /// event whose offset is its body digest) in one transaction, as a batch of the stream: each new identity decided by
  /// the rules of `features` and recorded; each identity applied before (by the stream, by this door, or earlier in
  /// `requests`) answered with the decision stored then. One answer per record, in order; `result` counts what a
  /// batch's result counts. Throws as apply() does. `may_commit`, when given, is asked right before the commit:
  /// false rolls the transaction back and returns no answer (`features` then holds state never committed).
  std::vector<InlineAnswer> decide(const store::PartitionBatch& requests, rules::FeatureEngine& features,
                                   BatchResult& result, const std::function<bool()>& may_commit = {});

  /// The store, for its callbacks (on_reconnect, on_progress).
  store::BatchStore& store() { return store_; }

 private:
  store::BatchStore store_;
};

}  // namespace fraud::consumer
