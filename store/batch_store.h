#pragma once
// The PostgreSQL transaction of a batch of one or several partitions: fence, deduplicate,
// apply the rules' writes, advance the offsets, commit. Everything a batch changes commits
// together or not at all, which is what makes a replay after a crash a no-op.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "events/decode.h"
#include "events/event.h"
#include "events/record.h"
#include "rules/features.h"
#include "rules/rule_set.h"

namespace fraud::store {

/// A record and what decoding made of it: an event, or the reason it is rejected.
struct DecodedRecord {
  events::Record record;
  std::optional<events::Event> event;
  std::string rejection;  ///< set when `event` is empty
};

/// An applied event's order (migrations/0011): its batch's number from applied_batches times
/// this, plus its place in the batch; so a batch holds fewer events than this.
inline constexpr std::int64_t kAppliedSeqPerBatch = 131072;

/// Consecutive records of one partition, in offset order, read under one assignment epoch.
struct PartitionBatch {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t epoch = 0;
  std::vector<DecodedRecord> records;

  std::int64_t next_offset() const { return records.back().record.offset + 1; }
};

/// The labels of one alert, for metrics.
struct AlertLabel {
  std::string rule;
  std::string decision;
  bool shadow = false;
  bool suppressed = false;  ///< not an alert: the rule held but a suppression silenced it
};

/// What one committed (or fenced) batch did.
struct BatchResult {
  bool fenced = false;  ///< another assignment owns the partition: nothing was written
  std::size_t processed = 0;
  std::size_t duplicates = 0;
  std::size_t rejected = 0;
  std::size_t alerts = 0;
  std::size_t duplicate_conflicts = 0;             ///< duplicates whose content differs from the applied copy
  std::vector<AlertLabel> alert_labels;            ///< one per rule hit, live or shadow, or suppressed
  std::vector<events::Timestamp> applied_origins;  ///< per new event: recorded_at, else the Kafka timestamp
  double rule_seconds = 0;                         ///< time spent in rule evaluation
};

/// A partition's stored position and the epoch this assignment now holds.
struct Claim {
  std::int64_t epoch = 0;
  std::optional<std::int64_t> next_offset;  ///< empty: never consumed by this group
};

/// Where the service's own outputs go once the outbox relay publishes them.
struct OutboxTopics {
  std::string alerts = "fraud-alerts";
  std::string dead_letters = "transactions.dlq";
};

/// What the batch loop needs of the database: the seam its unit tests fake. Every call throws
/// DatabaseError on failure.
class BatchWriter {
 public:
  virtual ~BatchWriter() = default;

  /// Takes ownership of a partition for this group: bumps its epoch, which fences every
  /// earlier owner's open batch, and returns where consumption must resume.
  virtual Claim claim(const std::string& topic, std::int32_t partition) = 0;

  /// Ends the database session of a stalled earlier owner of a partition; its pid, if any.
  virtual std::optional<int> release_stalled_owner(const std::string& topic, std::int32_t partition,
                                                   std::chrono::seconds stalled_for) = 0;

  /// Applies `batches` (each of another partition) in one transaction, one result each; a
  /// fenced batch writes nothing, the others commit together.
  virtual std::vector<BatchResult> apply(std::span<const PartitionBatch> batches, rules::FeatureEngine& features) = 0;
};

/// One connection, one batch at a time. Throws DatabaseError on failure; reconnects on the
/// next call after the connection broke.
class BatchStore final : public BatchWriter {
 public:
  BatchStore(std::string postgres_url, std::string group_id, std::string owner, OutboxTopics topics);
  ~BatchStore() override;
  BatchStore(const BatchStore&) = delete;
  BatchStore& operator=(const BatchStore&) = delete;

  /// Takes ownership of a partition for this group: bumps its epoch, which fences every
  /// earlier owner's open batch, and returns where consumption must resume. Waits at most
  /// lock_timeout (5 s) for a batch still committing under the previous epoch.
  Claim claim(const std::string& topic, std::int32_t partition) override;

  /// Ends the database session of a stalled earlier owner: one whose transaction has held the
  /// partition's offset row for longer than `stalled_for` (migrations/0008). Returns its pid,
  /// or nothing when no such session exists.
  std::optional<int> release_stalled_owner(const std::string& topic, std::int32_t partition,
                                           std::chrono::seconds stalled_for) override;

  /// Applies `batches` (each of another partition) in one transaction, one result each: the
  /// new events go through `features` (which loads the history it lacks from this database)
  /// and its rules, batch after batch in the order given. A batch whose partition another
  /// assignment owns is fenced and writes nothing; the others commit together. After a throw
  /// or a fenced result, `features` holds state that was never committed: the caller must
  /// forget it. The batches hold fewer than kAppliedSeqPerBatch records together.
  std::vector<BatchResult> apply(std::span<const PartitionBatch> batches, rules::FeatureEngine& features) override;

  /// Applies one batch alone.
  BatchResult apply(const PartitionBatch& batch, rules::FeatureEngine& features);

  /// Called each time a lost connection is replaced by a new one.
  void on_reconnect(std::function<void()> callback) { on_reconnect_ = std::move(callback); }

  /// Called while a long piece of an apply goes on (a first-seen kind's backfill, chunk by
  /// chunk), so the caller can tell the process is working, not stuck.
  void on_progress(std::function<void()> callback) { on_progress_ = std::move(callback); }

 private:
  struct State;  ///< the connection, and what this replica learned through it (batch_store.cpp)
  std::unique_ptr<State> state_;
  std::string url_, group_id_, owner_;
  OutboxTopics topics_;
  std::function<void()> on_reconnect_;
  std::function<void()> on_progress_;
};

}  // namespace fraud::store
