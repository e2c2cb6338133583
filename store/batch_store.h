#pragma once
// The PostgreSQL transaction of a batch of one or several partitions: fence and advance the
// offsets, deduplicate, load what the features need, record the rules' verdicts, commit.
// Everything a batch changes commits together or not at all, which is what makes a replay
// after a crash a no-op. The rules decide between the stages; the store never calls them.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
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

/// The door of events sent to POST /v1/decisions rather than read from a topic: their
/// processed_events rows (and conflicts) carry this topic, which no Kafka topic can be named
/// (parentheses are not allowed in one), partition kInlinePartition, and the body's digest as
/// their offset, so that a retried conflicting request is recorded once.
inline constexpr const char* kInlineTopic = "(inline)";
inline constexpr std::int32_t kInlinePartition = -1;

/// Consecutive records of one partition, in offset order, read under one assignment epoch;
/// or, with partition kInlinePartition, requests of the inline door, which have no offset to
/// fence or advance.
struct PartitionBatch {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t epoch = 0;
  std::vector<DecodedRecord> records;

  std::int64_t next_offset() const { return records.back().record.offset + 1; }
  bool is_inline() const { return partition == kInlinePartition; }
};

/// What the store already holds for an identity sent again: its applied copy's digest, the
/// topic it came first on (kInlineTopic: the inline door), and the decision made then.
struct PriorDecision {
  std::optional<std::int64_t> body_digest;  ///< empty for identities applied before migration 0007
  std::string first_topic;
  std::optional<std::string> decision;  ///< empty when its history row is no longer kept
  int score = 0;
  std::string rule_set_version;
  std::vector<rules::RuleHit> hits;  ///< the live rules that fired, with their explanations
};

/// An identity (source, id) as one string for maps and sets: the source's length leads, so no
/// two pairs share a key whatever bytes they hold (a separator character could be forged inside
/// either).
inline std::string dedup_key(std::string_view source, std::string_view id) {
  std::string key = std::to_string(source.size());
  key += ':';
  key += source;
  key += id;
  return key;
}

/// A new event of an open batch, in the order the rules see it.
struct NewEvent {
  const events::Event* event;
  std::size_t batch;  ///< the index, in the batches given to BatchStore::begin, of the batch it came in
};

/// What one committed (or fenced) batch stored.
struct StoredBatch {
  bool fenced = false;  ///< another assignment owns the partition: nothing was written
  std::size_t processed = 0;
  std::size_t duplicates = 0;
  std::size_t rejected = 0;
  std::size_t duplicate_conflicts = 0;             ///< duplicates whose content differs from the applied copy
  std::vector<events::Timestamp> applied_origins;  ///< per new event: recorded_at, else the Kafka timestamp
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

class BatchStore;

/// One transaction of one or several partitions' batches, stage by stage; the caller's rules
/// decide between the stages:
///
///   auto open = store.begin(batches, features);  // fence, advance the offsets, separate the new events
///   open.load(features);                         // what the features need: versions, history, pairs, lists
///   for each new event i: observe, evaluate, open.record(i, verdict);  // history row, alerts, case
///   auto stored = open.commit();
///
/// A batch whose partition another assignment owns is fenced and writes nothing; the others
/// commit together. Destroyed before commit(), everything rolls back.
///
/// - It uses its store's connection: one open batch per store at a time, never outliving the
///   store, nor the batches given to begin() (new_events() points into them).
/// - Between begin() and commit() it holds the batches' offset rows, their keys' version locks
///   and the dedup gate (shared), and the server ends a transaction idle for 10 s: decide
///   between the stages, do not wait.
/// - load() marks the engine's histories current: observe every new event with that engine,
///   in order, or forget() its state.
/// - Stages out of order, an event recorded twice or not at all, throw std::logic_error; a
///   failed stage ends the transaction, and nothing more may be called.
/// - Database failures throw DatabaseError (what else is thrown passes unchanged). After a
///   throw or a fenced batch, the features hold state that was never committed, which the
///   caller must forget.
class OpenBatch {
 public:
  OpenBatch(OpenBatch&&) noexcept;
  ~OpenBatch();

  /// The new events, batch after batch in the order given, offset order within one.
  std::span<const NewEvent> new_events() const { return new_events_; }

  /// Brings what `features` needs to observe the new events: it drops the histories other
  /// replicas extended and loads the ones it lacks; the first-seen pairs are claimed and the
  /// lists read as of this transaction.
  void load(rules::FeatureEngine& features);
  /// Per first_seen feature of new event `i`, whether its pair is new (after load()).
  const std::vector<bool>& first_seen(std::size_t i) const { return first_seen_[i]; }
  /// The runtime lists and suppressions in force for this transaction (after load(), with new events).
  const rules::RuntimeLists& lists() const { return *lists_; }
  const rules::ListsAsOf& lists_as_of() const;

  /// Records the verdict of new event `i` under the rules of version `rule_set_version`: its
  /// history row, its alerts (queued in the outbox) and its case; `declined` marks it an attempt
  /// whose money never moved (migrations/0029). Every new event is recorded once.
  void record(std::size_t i, rules::Verdict verdict, const std::string& rule_set_version, bool declined = false);

  /// What the store held before this transaction for each of `events`, found by identity
  /// (after begin(): an identity another replica was applying then has committed since).
  /// Empty where the identity was new to it.
  std::vector<std::optional<PriorDecision>> prior_decisions(std::span<const events::Event* const> events);

  /// Commits, and says what each batch stored.
  std::vector<StoredBatch> commit();

 private:
  friend class BatchStore;
  struct Work;  ///< the transaction and what it gathered (batch_store.cpp)
  explicit OpenBatch(std::unique_ptr<Work> work);
  std::unique_ptr<Work> work_;
  std::vector<NewEvent> new_events_;
  std::vector<std::vector<bool>> first_seen_;
  const rules::RuntimeLists* lists_ = nullptr;
};

/// The service's PostgreSQL store: one connection, one batch at a time. Throws DatabaseError
/// on failure; reconnects on the next call after the connection broke.
class BatchStore {
 public:
  BatchStore(std::string postgres_url, std::string group_id, std::string owner, OutboxTopics topics);
  ~BatchStore();
  BatchStore(const BatchStore&) = delete;
  BatchStore& operator=(const BatchStore&) = delete;

  /// Takes ownership of a partition for this group: bumps its epoch, which fences every
  /// earlier owner's open batch, and returns where consumption must resume. Waits at most
  /// lock_timeout (5 s) for a batch still committing under the previous epoch.
  Claim claim(const std::string& topic, std::int32_t partition);

  /// Ends the database session of a stalled earlier owner: one whose transaction has held the
  /// partition's offset row for longer than `stalled_for` (migrations/0008). Returns its pid,
  /// or nothing when no such session exists.
  std::optional<int> release_stalled_owner(const std::string& topic, std::int32_t partition,
                                           std::chrono::seconds stalled_for);

  /// Opens the transaction of `batches` (each of another partition, holding fewer than
  /// kAppliedSeqPerBatch records together): registers what `features`' rules read, fences
  /// and advances every batch's offset, deduplicates, and records the rejected records.
  OpenBatch begin(std::span<const PartitionBatch> batches, const rules::FeatureEngine& features);

  /// Called each time a lost connection is replaced by a new one.
  void on_reconnect(std::function<void()> callback) { on_reconnect_ = std::move(callback); }

  /// Called while a long piece of a begin goes on (a first-seen kind's backfill, chunk by
  /// chunk), so the caller can tell the process is working, not stuck.
  void on_progress(std::function<void()> callback) { on_progress_ = std::move(callback); }

 private:
  friend struct OpenBatch::Work;
  struct State;  ///< the connection, and what this replica learned through it (batch_store.cpp)
  std::unique_ptr<State> state_;
  std::string url_, group_id_, owner_;
  OutboxTopics topics_;
  std::function<void()> on_reconnect_;
  std::function<void()> on_progress_;
};

}  // namespace fraud::store
