#include "consumer/batch_loop.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "dedup/retention.h"
#include "events/time.h"
#include "ops/log.h"

namespace fraud::consumer {

namespace log = ops::log;
namespace {

using namespace std::chrono_literals;

constexpr auto kMaxPoll = 100ms;
constexpr auto kFirstBackoff = 100ms;
constexpr auto kMaxBackoff = 30s;
constexpr auto kProgressEvery = 10s;

std::string where(const TopicPartition& tp) { return tp.topic + "/" + std::to_string(tp.partition); }

/// Wall-clock time in microseconds: for latency and the dedup window, never for ordering.
std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void add(LoopCounters& c, const dedup::BatchResult& r) {
  ++c.batches;
  c.processed += r.processed, c.duplicates += r.duplicates, c.rejected += r.rejected, c.alerts += r.alerts;
}

dedup::BatchResult& operator+=(dedup::BatchResult& a, const dedup::BatchResult& b) {
  a.fenced = a.fenced || b.fenced;
  a.processed += b.processed, a.duplicates += b.duplicates, a.rejected += b.rejected, a.alerts += b.alerts;
  a.duplicate_conflicts += b.duplicate_conflicts;
  a.alert_labels.insert(a.alert_labels.end(), b.alert_labels.begin(), b.alert_labels.end());
  a.applied_origins.insert(a.applied_origins.end(), b.applied_origins.begin(), b.applied_origins.end());
  a.rule_seconds += b.rule_seconds;
  return a;
}

}  // namespace

BatchLoop::BatchLoop(const BatchConfig& batch, const LimitsConfig& limits, const RetentionConfig& retention,
                     dedup::BatchStore& store, std::shared_ptr<const rules::RuleSet> rules,
                     ServiceMetrics& metrics, HealthState& health, LoopHooks hooks)
    : batch_config_(batch),
      retention_days_(retention.days),
      store_(store),
      features_(std::make_unique<rules::FeatureEngine>(std::move(rules))),
      decoder_(limits.decode()),
      metrics_(metrics),
      health_(health),
      hooks_(std::move(hooks)) {}

void BatchLoop::set_rules(std::shared_ptr<const rules::RuleSet> rules) {
  features_ = std::make_unique<rules::FeatureEngine>(std::move(rules));
}

void BatchLoop::run(RecordSource& source, const std::atomic<bool>& stop) {
  source_ = &source;
  stop_ = &stop;
  auto next_progress = Clock::now() + kProgressEvery;
  while (!stop.load()) {
    health_.loop_heartbeat_ms = steady_ms();
    if (hooks_.each_turn) hooks_.each_turn();
    auto record = source.poll(poll_timeout(Clock::now()));
    if (fatal_) throw std::runtime_error(*fatal_);
    if (record) accept(std::move(*record));
    auto now = Clock::now();
    claim_waiting(now);
    flush_due(now);
    if (now >= next_progress) {
      next_progress = now + kProgressEvery;
      log::info("progress", {{"processed", std::to_string(counters_.processed)},
                             {"duplicates", std::to_string(counters_.duplicates)},
                             {"rejected", std::to_string(counters_.rejected)},
                             {"alerts", std::to_string(counters_.alerts)}});
    }
  }
  // Shutting down: apply what is in hand; what cannot be applied now is left to the next owner.
  for (auto& [tp, p] : partitions_) flush(tp, p, OnFailure::drop);
}

// Runs inside librdkafka's rebalance callback: one claim attempt, bounded by lock_timeout,
// never a retry loop. A partition not claimed now waits paused; the loop claims it later.
std::optional<std::int64_t> BatchLoop::on_assigned(const TopicPartition& tp) {
  auto& p = partitions_[tp] = Partition{};
  metrics_.assigned_partitions.Set(static_cast<double>(partitions_.size()));
  return try_claim(tp, p);
}

// One claim; on success the partition starts at the database's offset (its first record if
// this group never consumed it: the database, not Kafka's committed offset, is the truth).
std::optional<std::int64_t> BatchLoop::try_claim(const TopicPartition& tp, Partition& p) {
  // After a failure that is not a busy row (the database down, a lost connection), the other
  // partitions of this assignment wait without a try each: one attempt can take seconds, and
  // dozens in a row would outlast the group's poll interval.
  if (Clock::now() < database_down_until_) {
    p.claim_at = database_down_until_;
    if (p.claim_backoff.count() == 0) {
      p.waiting_since = Clock::now();
      p.claim_backoff = kFirstBackoff;
    }
    return std::nullopt;
  }
  try {
    auto claim = store_.claim(tp.topic, tp.partition);
    p.claimed = true;
    p.epoch = claim.epoch;
    p.next_offset = claim.next_offset.value_or(-1);
    log::info("partition claimed", {{"partition", where(tp)},
                                    {"epoch", std::to_string(claim.epoch)},
                                    {"resume_at", claim.next_offset ? std::to_string(*claim.next_offset) : "start"}});
    return claim.next_offset.value_or(kFromBeginning);
  } catch (const dedup::DatabaseError& e) {
    claim_failed(tp, p, e);
  } catch (const std::exception& e) {
    fatal_ = "claiming " + where(tp) + ": " + e.what();  // parked: nothing may escape librdkafka's callback
  }
  return std::nullopt;
}

void BatchLoop::claim_failed(const TopicPartition& tp, Partition& p, const dedup::DatabaseError& error) {
  auto now = Clock::now();
  if (p.claim_backoff.count() == 0) p.waiting_since = now;
  p.claim_backoff = p.claim_backoff.count() == 0 ? std::chrono::milliseconds(kFirstBackoff)
                                                 : std::min<std::chrono::milliseconds>(p.claim_backoff * 2, 5s);
  p.claim_at = now + p.claim_backoff;
  if (error.reason != "lock_timeout") database_down_until_ = p.claim_at;
  ++counters_.database_retries;
  metrics_.database_retries(error.reason).Increment();
  log::warn("claim failed; partition paused, claim will be retried",
            {{"partition", where(tp)}, {"reason", error.reason}, {"error", error.what()}});
  if (error.reason != "lock_timeout" || now - p.waiting_since < kStalledOwner) return;
  try {  // the row's holder has outlived any batch: a frozen earlier owner
    if (auto pid = store_.release_stalled_owner(tp.topic, tp.partition, kStalledOwner))
      log::warn("ended the database session of a stalled earlier owner",
                {{"partition", where(tp)}, {"backend_pid", std::to_string(*pid)}});
  } catch (const dedup::DatabaseError& e) {
    log::warn("could not end a stalled earlier owner's session", {{"partition", where(tp)}, {"error", e.what()}});
  }
}

// Partitions assigned while their claim failed: claimed here, between polls, then moved to
// the database's offset and resumed.
void BatchLoop::claim_waiting(Clock::time_point now) {
  if (!health_.in_group.load()) return;  // out of the group: a claim now could fence the rightful owner
  for (auto& [tp, p] : partitions_) {
    if (p.claimed || now < p.claim_at) continue;
    auto offset = try_claim(tp, p);
    if (!offset) continue;
    if (!source_->seek(tp, *offset)) {  // claimed, but not positioned: claim again later
      p.claimed = false;
      p.claim_at = now + kFirstBackoff;
      continue;
    }
    p.claim_backoff = {};
    source_->resume(tp);
  }
}

// Cached feature histories stay: another replica that extends their keys bumps the keys'
// versions, and a stale history is reloaded (dedup::BatchStore::synchronise_keys).
void BatchLoop::on_revoked(const std::vector<TopicPartition>& tps) {
  for (const auto& tp : tps) {
    auto it = partitions_.find(tp);
    if (it == partitions_.end()) continue;
    try {
      flush(tp, it->second, OnFailure::drop);
    } catch (const std::exception& e) {
      fatal_ = "applying " + where(tp) + " on revoke: " + e.what();
    }
    partitions_.erase(it);
  }
  metrics_.assigned_partitions.Set(static_cast<double>(partitions_.size()));
}

void BatchLoop::on_lost(const std::vector<TopicPartition>& tps) {
  // Another member may own these already; writing would be fenced, so drop without trying.
  for (const auto& tp : tps) {
    log::warn("partition lost", {{"partition", where(tp)}});
    partitions_.erase(tp);
  }
  metrics_.assigned_partitions.Set(static_cast<double>(partitions_.size()));
}

void BatchLoop::accept(events::Record record) {
  auto it = partitions_.find({record.topic, record.partition});
  if (it == partitions_.end() || !it->second.claimed) return;  // not ours (yet, or any more): never write it
  auto& p = it->second;
  // Fetched before a seek to the claimed offset took effect: the database has it already.
  if (record.offset < p.next_offset) return;
  p.next_offset = record.offset + 1;
  if (p.pending.empty()) p.first_pending = Clock::now();
  p.pending.push_back(std::move(record));
}

void BatchLoop::flush_due(Clock::time_point now) {
  auto max_wait = std::chrono::milliseconds(batch_config_.max_wait_ms);
  for (auto& [tp, p] : partitions_) {
    if (p.pending.empty() || !p.claimed) continue;
    if (p.backoff.count() > 0 && now < p.retry_at) continue;
    bool full = p.pending.size() >= static_cast<std::size_t>(batch_config_.max_records);
    if (full || now - p.first_pending >= max_wait || p.backoff.count() > 0) flush(tp, p, OnFailure::retry_later);
  }
}

void BatchLoop::flush(const TopicPartition& tp, Partition& p, OnFailure on_failure) {
  while (!p.pending.empty() && p.claimed) {
    auto count = std::min(p.pending.size(), static_cast<std::size_t>(batch_config_.max_records));
    try {
      if (!apply_chunk(tp, p, count)) return;
    } catch (const dedup::DatabaseError& e) {
      // Not one record's fault (those were rejected in apply_or_split): the batch waits.
      if (on_failure == OnFailure::drop) {
        log::warn("batch rolled back; the next owner re-reads it", {{"partition", where(tp)}, {"error", e.what()}});
        p.pending.clear();
        return;
      }
      schedule_retry(tp, p, e);
      return;
    }
  }
}

bool BatchLoop::apply_chunk(const TopicPartition& tp, Partition& p, std::size_t count) {
  auto started = Clock::now();
  auto batch = decode(tp, p, count);
  if (hooks_.before_database_apply) hooks_.before_database_apply();
  auto result = apply_or_split(batch);
  if (result.fenced) {
    // Another replica claimed the partition since: this one is a zombie whose revoke is on
    // its way, or (rarely) the other was, claiming late. Stop writing; if the partition is
    // still this replica's after kFencedReclaim, every zombie has been told, so claim again.
    ++counters_.fenced_batches;
    metrics_.fenced_batches.Increment();
    p.claimed = false;
    p.pending.clear();
    p.claim_at = Clock::now() + kFencedReclaim;
    p.claim_backoff = {};
    source_->pause(tp);
    log::warn("batch fenced: another replica owns the partition", {{"partition", where(tp)},
                                                                     {"epoch", std::to_string(p.epoch)}});
    return false;
  }
  add(counters_, result);
  observe(tp, result, count, std::chrono::duration<double>(Clock::now() - started).count());
  p.pending.erase(p.pending.begin(), p.pending.begin() + static_cast<std::ptrdiff_t>(count));
  p.first_pending = Clock::now();
  if (hooks_.after_database_commit) hooks_.after_database_commit();
  source_->commit(tp, batch.next_offset());  // only now: the database holds the offset first
  if (p.backoff.count() > 0) {
    p.backoff = {};
    source_->resume(tp);
    log::info("database writes recovered", {{"partition", where(tp)}});
  }
  return true;
}

dedup::PartitionBatch BatchLoop::decode(const TopicPartition& tp, const Partition& p, std::size_t count) {
  dedup::PartitionBatch batch{tp.topic, tp.partition, p.epoch, {}};
  batch.records.reserve(count);
  auto horizon = retention_days_ > 0 ? dedup::retention_horizon(now_micros(), retention_days_) : events::Timestamp{0};
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
      log::warn("record rejected", {{"partition", where(tp)}, {"offset", std::to_string(record.offset)},
                                    {"envelope", events::to_string(decoded.envelope)}});
      log::debug("record rejected", {{"partition", where(tp)}, {"offset", std::to_string(record.offset)},
                                     {"reason", decoded.error}});
    }
    batch.records.push_back({record, std::move(decoded.event), std::move(decoded.error)});
  }
  return batch;
}

// A permanent error belongs to one record, never to the partition: narrow it down by
// applying records one at a time, and reject the one the database refuses. Records already
// committed in a split are replayed as duplicates if a retry follows, which changes nothing.
dedup::BatchResult BatchLoop::apply_or_split(const dedup::PartitionBatch& batch) {
  try {
    return apply(batch);
  } catch (const dedup::DatabaseError& e) {
    if (!e.record_fault) throw;
    if (batch.records.size() == 1) {
      auto refused = batch;
      refused.records[0].event.reset();
      refused.records[0].rejection = std::string("the database refused the record: ") + e.what();
      log::warn("record rejected by the database", {{"offset", std::to_string(batch.records[0].record.offset)},
                                                    {"error", e.what()}});
      return apply(refused);
    }
    dedup::BatchResult total;
    for (const auto& record : batch.records) {
      total += apply_or_split({batch.topic, batch.partition, batch.epoch, {record}});
      if (total.fenced) break;
    }
    return total;
  }
}

void BatchLoop::observe(const TopicPartition& tp, const dedup::BatchResult& result, std::size_t records,
                        double seconds) {
  metrics_.records(tp.topic, "processed").Increment(static_cast<double>(result.processed));
  metrics_.records(tp.topic, "duplicate").Increment(static_cast<double>(result.duplicates));
  metrics_.records(tp.topic, "rejected").Increment(static_cast<double>(result.rejected));
  metrics_.duplicate_conflicts.Increment(static_cast<double>(result.duplicate_conflicts));
  metrics_.batch_records.Observe(static_cast<double>(records));
  metrics_.batch_seconds.Observe(seconds);
  metrics_.rule_evaluation_seconds.Observe(result.rule_seconds);
  for (const auto& alert : result.alert_labels) {
    if (alert.shadow) metrics_.shadow_hits(alert.rule).Increment();
    else metrics_.alerts(alert.rule, alert.decision).Increment();
  }
  auto now_us = now_micros();
  for (auto origin : result.applied_origins)
    metrics_.end_to_end_seconds.Observe(static_cast<double>(std::max<std::int64_t>(0, now_us - origin)) / 1e6);
}

// One attempt. Feature state the attempt built without committing it is forgotten, so the
// engine reloads it from the history that did commit.
dedup::BatchResult BatchLoop::apply(const dedup::PartitionBatch& batch) {
  constexpr std::size_t kMaxKeysHeld = 1'000'000;  // bounds memory: past it, start from the database again
  try {
    auto result = store_.apply(batch, *features_);
    if (result.fenced || features_->keys_held() > kMaxKeysHeld) features_->forget();
    return result;
  } catch (...) {
    features_->forget();
    throw;
  }
}

void BatchLoop::schedule_retry(const TopicPartition& tp, Partition& p, const dedup::DatabaseError& error) {
  p.backoff = p.backoff.count() == 0 ? std::chrono::milliseconds(kFirstBackoff)
                                     : std::min<std::chrono::milliseconds>(p.backoff * 2, kMaxBackoff);
  p.retry_at = Clock::now() + p.backoff;
  ++counters_.database_retries;
  metrics_.database_retries(error.reason).Increment();
  source_->pause(tp);
  log::warn("database error; partition paused, batch will be retried",
            {{"partition", where(tp)}, {"reason", error.reason}, {"backoff_ms", std::to_string(p.backoff.count())},
             {"error", error.what()}});
}

std::chrono::milliseconds BatchLoop::poll_timeout(Clock::time_point now) const {
  auto deadline = now + kMaxPoll;
  auto max_wait = std::chrono::milliseconds(batch_config_.max_wait_ms);
  for (const auto& [tp, p] : partitions_) {
    if (p.pending.empty() || !p.claimed) continue;
    deadline = std::min(deadline, p.backoff.count() > 0 ? p.retry_at : p.first_pending + max_wait);
  }
  return std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
}

}  // namespace fraud::consumer
