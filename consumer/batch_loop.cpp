#include "consumer/batch_loop.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "events/time.h"
#include "ops/log.h"
#include "store/retention.h"

namespace fraud::consumer {

namespace log = ops::log;
namespace {

using namespace std::chrono_literals;

constexpr auto kMaxPoll = 100ms;
constexpr auto kProgressEvery = 10s;

std::string where(const TopicPartition& tp) { return tp.topic + "/" + std::to_string(tp.partition); }

void add(LoopCounters& c, const BatchResult& r) {
  ++c.batches;
  c.processed += r.processed, c.duplicates += r.duplicates, c.rejected += r.rejected, c.alerts += r.alerts;
}

}  // namespace

BatchLoop::BatchLoop(const BatchConfig& batch, const LimitsConfig& limits, const RetentionConfig& retention,
                     BatchWriter& store, std::shared_ptr<const rules::RuleSet> rules, ServiceMetrics& metrics,
                     HealthState& health, LoopCallbacks callbacks)
    : batch_config_(batch), retention_days_(retention.days), store_(store),
      features_(std::make_unique<rules::FeatureEngine>(std::move(rules))), decoder_(limits.decode()),
      claims_(store, metrics, counters_.database_retries), metrics_(metrics), health_(health),
      callbacks_(std::move(callbacks)) {}

void BatchLoop::set_rules(std::shared_ptr<const rules::RuleSet> rules) {
  features_ = std::make_unique<rules::FeatureEngine>(std::move(rules));
}

void BatchLoop::run(RecordSource& source, const std::atomic<bool>& stop) {
  source_ = &source;
  stop_ = &stop;
  auto next_progress = Clock::now() + kProgressEvery;
  while (!stop.load()) {
    health_.loop_heartbeat_ms = steady_ms();
    if (callbacks_.between_batches) callbacks_.between_batches();
    auto record = source.poll(poll_timeout(Clock::now()));
    if (fatal_) throw std::runtime_error(*fatal_);
    bool drained = !record;  // nothing more waiting right now: what is in hand need not wait
    if (record) accept(std::move(*record));
    auto now = Clock::now();
    claim_due(now);
    flush_due(now, drained);
    if (now >= next_progress) {
      next_progress = now + kProgressEvery;
      log::info("progress", {{"processed", std::to_string(counters_.processed)},
                             {"duplicates", std::to_string(counters_.duplicates)},
                             {"rejected", std::to_string(counters_.rejected)},
                             {"alerts", std::to_string(counters_.alerts)}});
    }
  }
  // Shutting down: apply what is in hand; what cannot be applied now is left to the next owner.
  std::vector<TopicPartition> all;
  for (const auto& [tp, p] : partitions_) all.push_back(tp);
  flush(all, OnFailure::drop);
}

// Runs inside librdkafka's rebalance callback: one claim attempt, bounded by lock_timeout,
// never a retry loop. A partition not claimed now waits paused; the loop claims it later. On
// a claim, the partition starts at the database's offset (its first record if this group
// never consumed it: the database, not Kafka's committed offset, is the truth).
std::optional<std::int64_t> BatchLoop::on_assigned(const TopicPartition& tp) {
  auto& p = partitions_[tp] = Partition{};
  metrics_.assigned_partitions.Set(static_cast<double>(partitions_.size()));
  try {
    auto claim = claims_.assign(tp);
    if (!claim) return std::nullopt;
    p.next_offset = claim->next_offset.value_or(-1);
    return claim->next_offset.value_or(kFromBeginning);
  } catch (const std::exception& e) {
    fatal_ = "claiming " + where(tp) + ": " + e.what();  // parked: nothing may escape librdkafka's callback
    return std::nullopt;
  }
}

// Partitions assigned while their claim failed: claimed here, between polls, then moved to
// the database's offset and resumed.
void BatchLoop::claim_due(Clock::time_point now) {
  if (!source_->in_group()) return;  // out of the group: a claim now could fence the rightful owner
  for (const auto& [tp, claim] : claims_.claim_due(now)) {
    if (!source_->seek(tp, claim.next_offset.value_or(kFromBeginning))) {
      claims_.claim_again(tp, now);  // claimed, but not positioned
      continue;
    }
    partitions_.at(tp).next_offset = claim.next_offset.value_or(-1);
    source_->resume(tp);
  }
}

// Cached feature histories stay: another replica that extends their keys bumps the keys'
// versions, and a stale history is reloaded (store/feature_history.h, synchronise_keys).
void BatchLoop::on_revoked(const std::vector<TopicPartition>& tps) {
  try {
    flush(tps, OnFailure::drop);
  } catch (const std::exception& e) {
    fatal_ = std::string("applying revoked partitions: ") + e.what();
  }
  for (const auto& tp : tps) {
    partitions_.erase(tp);
    claims_.forget(tp);
  }
  metrics_.assigned_partitions.Set(static_cast<double>(partitions_.size()));
}

void BatchLoop::on_lost(const std::vector<TopicPartition>& tps) {
  // Another member may own these already; writing would be fenced, so drop without trying.
  for (const auto& tp : tps) {
    log::warn("partition lost", {{"partition", where(tp)}});
    partitions_.erase(tp);
    claims_.forget(tp);
  }
  metrics_.assigned_partitions.Set(static_cast<double>(partitions_.size()));
}

void BatchLoop::accept(events::Record record) {
  auto it = partitions_.find({record.topic, record.partition});
  if (it == partitions_.end() || !claims_.claimed(it->first)) return;  // not ours (yet, or any more): never write it
  auto& p = it->second;
  // Fetched before a seek to the claimed offset took effect: the database has it already.
  if (record.offset < p.next_offset) return;
  p.next_offset = record.offset + 1;
  if (p.pending.empty()) p.first_pending = Clock::now();
  p.pending.push_back(std::move(record));
}

bool BatchLoop::ready(const TopicPartition& tp, const Partition& p, Clock::time_point now) const {
  return claims_.claimed(tp) && !p.pending.empty() && !(p.backoff.backing_off() && now < p.retry_at);
}

// A batch is due when a partition's records fill one, when its oldest record has waited
// max_wait, when a retry is due, or as soon as nothing more is waiting in the consumer (the
// next batch then gathers while this one commits). Every partition with records ready goes
// into the one transaction: its fixed cost is paid once, not once per partition.
void BatchLoop::flush_due(Clock::time_point now, bool drained) {
  auto max_wait = std::chrono::milliseconds(batch_config_.max_wait_ms);
  std::vector<TopicPartition> ready_now;
  bool due = false;
  for (const auto& [tp, p] : partitions_) {
    if (!ready(tp, p, now)) continue;
    ready_now.push_back(tp);
    due = due || drained || p.backoff.backing_off() || now - p.first_pending >= max_wait ||
          p.pending.size() >= static_cast<std::size_t>(batch_config_.max_records);
  }
  if (due) flush(ready_now, OnFailure::retry_later);
}

// Applies what the partitions in `which` hold, in transactions of at most max_records
// records shared between them, until they hold nothing, or a transaction failed.
void BatchLoop::flush(const std::vector<TopicPartition>& which, OnFailure on_failure) {
  for (;;) {
    std::vector<TopicPartition> group;
    auto now = Clock::now();
    for (const auto& tp : which) {
      auto it = partitions_.find(tp);
      // Shutting down or revoked: one attempt now, whatever the backoff.
      if (it != partitions_.end() && claims_.claimed(tp) && !it->second.pending.empty() &&
          (on_failure == OnFailure::drop || ready(tp, it->second, now)))
        group.push_back(tp);
    }
    if (group.empty() || !apply_and_commit(group, on_failure)) return;
  }
}

// Applies the partitions' records in one transaction, then commits their offsets to Kafka;
// false when the transaction failed (the group waits, or is dropped, per `on_failure`).
bool BatchLoop::apply_and_commit(std::vector<TopicPartition> group, OnFailure on_failure) {
  auto started = Clock::now();
  auto max_records = static_cast<std::size_t>(batch_config_.max_records);
  if (group.size() > max_records) group.resize(max_records);  // the rest go in the next transaction
  auto share = std::max<std::size_t>(1, max_records / group.size());
  std::vector<store::PartitionBatch> batches;
  std::size_t records = 0;
  for (const auto& tp : group) {
    const auto& p = partitions_.at(tp);
    batches.push_back(decode(tp, p, std::min(p.pending.size(), share)));
    records += batches.back().records.size();
  }
  if (callbacks_.before_database_apply) callbacks_.before_database_apply();
  std::vector<BatchResult> results;
  try {
    results = apply_narrowing_faults(batches);
  } catch (const postgres::DatabaseError& e) {
    back_off(group, e, on_failure);
    return false;
  }
  metrics_.batch_records.Observe(static_cast<double>(records));
  metrics_.batch_seconds.Observe(std::chrono::duration<double>(Clock::now() - started).count());
  bool committed = false;
  for (std::size_t i = 0; i < group.size(); ++i) {
    auto& p = partitions_.at(group[i]);
    if (results[i].fenced) {
      fenced(group[i], p);
      continue;
    }
    committed = true;
    add(counters_, results[i]);
    observe(group[i], results[i]);
    p.pending.erase(p.pending.begin(), p.pending.begin() + static_cast<std::ptrdiff_t>(batches[i].records.size()));
    p.first_pending = Clock::now();
  }
  if (committed && callbacks_.after_database_commit) callbacks_.after_database_commit();
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (results[i].fenced) continue;
    source_->commit(group[i], batches[i].next_offset());  // only now: the database holds the offset first
    auto& p = partitions_.at(group[i]);
    if (p.backoff.backing_off()) {
      p.backoff.reset();
      source_->resume(group[i]);
      log::info("database writes recovered", {{"partition", where(group[i])}});
    }
  }
  return true;
}

// Another replica claimed the partition since: this one is a zombie whose revoke is on its
// way, or (rarely) the other was, claiming late. Stop writing; if the partition is still this
// replica's after PartitionClaims::kFencedReclaim, every zombie has been told, so claim again.
void BatchLoop::fenced(const TopicPartition& tp, Partition& p) {
  ++counters_.fenced_batches;
  metrics_.fenced_batches.Increment();
  log::warn("batch fenced: another replica owns the partition",
            {{"partition", where(tp)}, {"epoch", std::to_string(claims_.epoch(tp))}});
  claims_.fenced(tp);
  p.pending.clear();
  source_->pause(tp);
}

store::PartitionBatch BatchLoop::decode(const TopicPartition& tp, const Partition& p, std::size_t count) {
  store::PartitionBatch batch{tp.topic, tp.partition, claims_.epoch(tp), {}};
  batch.records.reserve(count);
  auto horizon =
      retention_days_ > 0 ? store::retention_horizon(events::wall_clock_now(), retention_days_) : events::Timestamp{0};
  for (std::size_t i = 0; i < count; ++i) {
    const auto& record = p.pending[i];
    auto decoded = record.decode(decoder_);
    if (decoded.event && decoded.event->occurred_at < horizon) {
      // Its day may be pruned already: a duplicate could not be recognised, so it is not
      // applied. Kept in rejected_events; raising retention.days and replaying repairs it.
      decoded.error = "occurred_at " + events::format_rfc3339(decoded.event->occurred_at) +
                      " is before the deduplication window, which starts at " + events::format_rfc3339(horizon) +
                      " (retention.days = " + std::to_string(retention_days_) + ")";
      decoded.event.reset();
    }
    // The reason can quote field values (personal data): it goes to rejected_events, and to
    // the log only at debug level.
    if (!decoded.event) {
      log::warn("record rejected", {{"partition", where(tp)},
                                    {"offset", std::to_string(record.offset)},
                                    {"envelope", events::to_string(decoded.envelope)}});
      log::debug("record rejected",
                 {{"partition", where(tp)}, {"offset", std::to_string(record.offset)}, {"reason", decoded.error}});
    }
    batch.records.push_back({record, std::move(decoded.event), std::move(decoded.error)});
  }
  return batch;
}

// A permanent error belongs to one record, never to the partition: narrow it down by
// applying records one at a time, and reject the one the database refuses. Records already
// committed in a split are replayed as duplicates if a retry follows, which changes nothing.
std::vector<BatchResult> BatchLoop::apply_narrowing_faults(const std::vector<store::PartitionBatch>& batches) {
  try {
    return attempt(batches);
  } catch (const postgres::DatabaseError& e) {
    if (!e.record_fault) throw;
    if (batches.size() == 1) return {narrow_fault(batches.front(), e)};
    std::vector<BatchResult> results;  // first the partition, then the record
    for (const auto& batch : batches) results.push_back(apply_partition_narrowing_faults(batch));
    return results;
  }
}

BatchResult BatchLoop::apply_partition_narrowing_faults(const store::PartitionBatch& batch) {
  try {
    return attempt({batch}).front();
  } catch (const postgres::DatabaseError& e) {
    if (!e.record_fault) throw;
    return narrow_fault(batch, e);
  }
}

// Records one at a time until the one the database refuses is found; that one is applied as
// rejected (kept in rejected_events with the database's reason).
BatchResult BatchLoop::narrow_fault(const store::PartitionBatch& batch, const postgres::DatabaseError& e) {
  if (batch.records.size() == 1) {
    auto refused = batch;
    refused.records[0].event.reset();
    refused.records[0].rejection = std::string("the database refused the record: ") + e.what();
    log::warn("record rejected by the database",
              {{"offset", std::to_string(batch.records[0].record.offset)}, {"error", e.what()}});
    return attempt({refused}).front();
  }
  BatchResult total;
  for (const auto& record : batch.records) {
    total += apply_partition_narrowing_faults({batch.topic, batch.partition, batch.epoch, {record}});
    if (total.fenced) break;
  }
  return total;
}

void BatchLoop::observe(const TopicPartition& tp, const BatchResult& result) { count_in(metrics_, tp.topic, result); }

// One attempt. Feature state the attempt built without committing it is forgotten, so the
// engine reloads it from the history that did commit.
std::vector<BatchResult> BatchLoop::attempt(const std::vector<store::PartitionBatch>& batches) {
  constexpr std::size_t kMaxKeysHeld = 1'000'000;  // bounds memory: past it, start from the database again
  try {
    auto results = store_.apply(batches, *features_);
    bool fenced = std::any_of(results.begin(), results.end(), [](const auto& r) { return r.fenced; });
    if (fenced || features_->keys_held() > kMaxKeysHeld) features_->forget();
    return results;
  } catch (...) {
    features_->forget();
    throw;
  }
}

// Not one record's fault (those were rejected in apply_narrowing_faults): the partitions wait,
// and are retried together, at one time, with one backoff (the longest of theirs, doubled);
// or, when shutting down or revoked, their records are dropped for the next owner to re-read.
void BatchLoop::back_off(const std::vector<TopicPartition>& group, const postgres::DatabaseError& error,
                         OnFailure on_failure) {
  if (on_failure == OnFailure::drop) {
    for (const auto& tp : group) {
      log::warn("batch rolled back; the next owner re-reads it", {{"partition", where(tp)}, {"error", error.what()}});
      partitions_.at(tp).pending.clear();
    }
    return;
  }
  auto backoff = partitions_.at(group.front()).backoff;
  for (const auto& tp : group)
    if (partitions_.at(tp).backoff.wait() > backoff.wait()) backoff = partitions_.at(tp).backoff;
  auto retry_at = Clock::now() + backoff.fail();
  for (const auto& tp : group) {
    auto& p = partitions_.at(tp);
    p.backoff = backoff;
    p.retry_at = retry_at;
    ++counters_.database_retries;
    metrics_.database_retries(error.reason).Increment();
    source_->pause(tp);
    log::warn("database error; partition paused, batch will be retried",
              {{"partition", where(tp)},
               {"reason", error.reason},
               {"backoff_ms", std::to_string(backoff.wait().count())},
               {"error", error.what()}});
  }
}

std::chrono::milliseconds BatchLoop::poll_timeout(Clock::time_point now) const {
  // Records in hand: only look whether more are waiting (flush_due applies them once none
  // are). Waiting for a retry: until it is due.
  auto deadline = now + kMaxPoll;
  for (const auto& [tp, p] : partitions_) {
    if (p.pending.empty() || !claims_.claimed(tp)) continue;
    deadline = std::min(deadline, p.backoff.backing_off() ? p.retry_at : now);
  }
  return std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
}

}  // namespace fraud::consumer
