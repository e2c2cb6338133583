#include "consumer/partition_claims.h"

#include "ops/log.h"

namespace fraud::consumer {

namespace log = ops::log;

namespace {
std::string where(const TopicPartition& tp) { return tp.topic + "/" + std::to_string(tp.partition); }
}  // namespace

PartitionClaims::PartitionClaims(BatchWriter& store, ServiceMetrics& metrics, std::uint64_t& retries)
    : store_(store), metrics_(metrics), retries_(retries) {}

std::optional<store::Claim> PartitionClaims::assign(const TopicPartition& tp) {
  auto& s = claims_[tp] = State{};
  return try_claim(tp, s);
}

std::vector<std::pair<TopicPartition, store::Claim>> PartitionClaims::claim_due(Clock::time_point now) {
  std::vector<std::pair<TopicPartition, store::Claim>> claimed_now;
  for (auto& [tp, s] : claims_) {
    if (s.claimed || now < s.claim_at) continue;
    if (auto claim = try_claim(tp, s)) claimed_now.emplace_back(tp, *claim);
  }
  return claimed_now;
}

void PartitionClaims::claim_again(const TopicPartition& tp, Clock::time_point now) {
  auto& s = claims_.at(tp);
  s.claimed = false;
  s.claim_at = now + std::chrono::milliseconds(100);
}

void PartitionClaims::fenced(const TopicPartition& tp) {
  auto& s = claims_.at(tp);
  s.claimed = false;
  s.claim_at = Clock::now() + kFencedReclaim;
  s.backoff.reset();
}

bool PartitionClaims::claimed(const TopicPartition& tp) const {
  auto it = claims_.find(tp);
  return it != claims_.end() && it->second.claimed;
}

std::optional<store::Claim> PartitionClaims::try_claim(const TopicPartition& tp, State& s) {
  // After a failure that is not a busy row (the database down, a lost connection), the other
  // partitions of this assignment wait without a try each: one attempt can take seconds, and
  // dozens in a row would outlast the group's poll interval.
  if (Clock::now() < database_down_until_) {
    s.claim_at = database_down_until_;
    if (!s.backoff.backing_off()) {
      s.waiting_since = Clock::now();
      s.backoff.fail();
    }
    return std::nullopt;
  }
  try {
    auto claim = store_.claim(tp.topic, tp.partition);
    s.claimed = true;
    s.epoch = claim.epoch;
    s.backoff.reset();
    log::info("partition claimed", {{"partition", where(tp)},
                                    {"epoch", std::to_string(claim.epoch)},
                                    {"resume_at", claim.next_offset ? std::to_string(*claim.next_offset) : "start"}});
    return claim;
  } catch (const postgres::DatabaseError& e) {
    failed(tp, s, e);
    return std::nullopt;
  }
}

void PartitionClaims::failed(const TopicPartition& tp, State& s, const postgres::DatabaseError& error) {
  auto now = Clock::now();
  if (!s.backoff.backing_off()) s.waiting_since = now;
  s.claim_at = now + s.backoff.fail();
  if (error.reason != "lock_timeout") database_down_until_ = s.claim_at;
  ++retries_;
  metrics_.database_retries(error.reason).Increment();
  log::warn("claim failed; partition paused, claim will be retried",
            {{"partition", where(tp)}, {"reason", error.reason}, {"error", error.what()}});
  if (error.reason == "lock_timeout") release_if_stalled(tp, s, now);
}

// The offset row's holder has outlived any batch: a frozen earlier owner.
void PartitionClaims::release_if_stalled(const TopicPartition& tp, const State& s, Clock::time_point now) {
  if (now - s.waiting_since < kStalledOwner) return;
  try {
    if (auto pid = store_.release_stalled_owner(tp.topic, tp.partition, kStalledOwner))
      log::warn("ended the database session of a stalled earlier owner",
                {{"partition", where(tp)}, {"backend_pid", std::to_string(*pid)}});
  } catch (const postgres::DatabaseError& e) {
    log::warn("could not end a stalled earlier owner's session", {{"partition", where(tp)}, {"error", e.what()}});
  }
}

}  // namespace fraud::consumer
