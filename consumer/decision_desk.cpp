#include "consumer/decision_desk.h"

#include <chrono>

#include "events/time.h"
#include "ops/backoff.h"
#include "ops/log.h"
#include "postgres/database_error.h"

namespace fraud::consumer {

namespace log = ops::log;
using Clock = std::chrono::steady_clock;

bool DeskTicket::abandon() const {
  auto now = state->load();
  while (now == RequestState::waiting || now == RequestState::taken)
    if (state->compare_exchange_weak(now, RequestState::abandoned)) return true;
  return now == RequestState::abandoned;
}

DecisionDesk::DecisionDesk(std::string postgres_url, std::string group_id, std::string owner,
                           store::OutboxTopics topics, std::shared_ptr<const rules::RuleSet> rules,
                           ServiceMetrics& metrics, std::size_t max_group, std::chrono::microseconds group_interval,
                           prometheus::Histogram& group_sizes)
    : applier_(std::move(postgres_url), std::move(group_id), std::move(owner), std::move(topics)), metrics_(metrics),
      max_group_(max_group), group_interval_(group_interval), group_sizes_(group_sizes),
      features_(std::make_unique<rules::FeatureEngine>(std::move(rules))) {
  applier_.store().on_reconnect([this] { metrics_.reconnects.Increment(); });
  thread_ = std::thread([this] { run(); });
}

DecisionDesk::~DecisionDesk() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

DeskTicket DecisionDesk::submit(events::Event event, std::int64_t digest) {
  auto state = std::make_shared<std::atomic<RequestState>>(RequestState::waiting);
  Request request{std::move(event), digest, {}, state};
  DeskTicket ticket{request.answer.get_future(), std::move(state)};
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(request));
    // The desk waits for a first request, then for a full group: other requests change nothing it waits on.
    wake = queue_.size() == 1 || queue_.size() >= max_group_;
  }
  if (wake) wake_.notify_one();
  return ticket;
}

void DecisionDesk::set_rules(std::shared_ptr<const rules::RuleSet> rules) {
  std::lock_guard lock(mutex_);
  new_rules_ = std::move(rules);
}

namespace {

void refuse(std::promise<InlineAnswer>& answer, const std::string& why) {
  answer.set_exception(std::make_exception_ptr(DeskUnavailable(why)));
}

}  // namespace

// The requests waiting now, up to max_group_, once there are any and a group interval passed
// since the last group was taken (or max_group_ wait); none when stopping. One its
// caller abandoned is not applied: the caller has answered with the fallback already, and the
// stream applies it when the outbox publishes it.
std::vector<DecisionDesk::Request> DecisionDesk::take_group() {
  std::vector<Request> group;
  std::shared_ptr<const rules::RuleSet> rules;
  {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    wake_.wait_until(lock, last_group_ + group_interval_, [&] { return stopping_ || queue_.size() >= max_group_; });
    last_group_ = Clock::now();
    if (stopping_) {
      for (auto& r : queue_) refuse(r.answer, "the service is stopping");
      queue_.clear();
      return group;
    }
    while (!queue_.empty() && group.size() < max_group_) {
      auto expected = RequestState::waiting;
      if (queue_.front().state->compare_exchange_strong(expected, RequestState::taken))
        group.push_back(std::move(queue_.front()));
      else refuse(queue_.front().answer, "abandoned by its caller before it was taken");
      queue_.pop_front();
    }
    rules = std::move(new_rules_);
  }
  if (rules) features_ = std::make_unique<rules::FeatureEngine>(std::move(rules));
  return group;
}

void DecisionDesk::run() {
  ops::Backoff backoff{std::chrono::milliseconds(100), std::chrono::seconds(5)};
  Clock::time_point retry_at{};
  for (;;) {
    auto group = take_group();
    if (group.empty()) {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      continue;  // every request taken had been abandoned
    }
    // A database that just failed is not asked again at once: the callers get their fallback now.
    if (Clock::now() < retry_at) {
      for (auto& r : group) refuse(r.answer, "the database failed; the inline door retries it shortly");
      continue;
    }
    try {
      decide(std::move(group));
      backoff.reset();
    } catch (const postgres::DatabaseError& e) {
      metrics_.database_retries(e.reason).Increment();
      retry_at = Clock::now() + backoff.fail();
      log::warn("inline decisions failed; answering with the fallback", {{"reason", e.reason}, {"error", e.what()}});
    } catch (const std::exception& e) {
      // Not the database's: a fault of this service. The group was answered unavailable; the
      // feature state is forgotten, and the door goes on.
      log::error("inline decisions failed unexpectedly; answering with the fallback", {{"error", e.what()}});
    }
  }
}

// Applies `group` and answers each request. Abandoned requests leave the group and it is tried
// again without them; a data exception is some event's fault, and each request is then tried
// alone. Any other failure answers every request unavailable, and is rethrown.
void DecisionDesk::decide(std::vector<Request> group) {
  while (!group.empty()) {
    std::vector<Request> kept;
    for (auto& r : group) {
      if (r.state->load() == RequestState::abandoned) refuse(r.answer, "abandoned by its caller");
      else kept.push_back(std::move(r));
    }
    group = std::move(kept);
    if (group.empty()) return;
    try {
      if (try_group(group)) return;
    } catch (const postgres::DatabaseError& e) {
      features_->forget();
      if (e.record_fault && group.size() > 1) return answer_each_alone(group);
      if (e.record_fault) return group[0].answer.set_exception(std::make_exception_ptr(DeskRefused(e.what())));
      for (auto& r : group) refuse(r.answer, std::string("the database failed: ") + e.reason);
      throw;
    } catch (...) {
      features_->forget();
      for (auto& r : group) refuse(r.answer, "the inline door failed");
      throw;
    }
  }
}

// One transaction for the group. Right before its commit every request moves from taken to
// committing; if one was abandoned meanwhile, the others move back and the transaction rolls
// back (false). True once committed and answered.
bool DecisionDesk::try_group(std::vector<Request>& group) {
  constexpr std::size_t kMaxKeysHeld = 1'000'000;  // as the batch loop: past it, start from the database again
  store::PartitionBatch requests{store::kInlineTopic, store::kInlinePartition, 0, {}};
  auto now_ms = events::wall_clock_now() / 1000;
  for (const auto& r : group) {
    store::DecodedRecord d;
    d.record.topic = store::kInlineTopic, d.record.partition = store::kInlinePartition;
    d.record.offset = r.digest, d.record.timestamp_ms = now_ms;
    d.event = r.event;
    requests.records.push_back(std::move(d));
  }
  auto commit_all = [&] {
    for (std::size_t i = 0; i < group.size(); ++i) {
      auto expected = RequestState::taken;
      if (group[i].state->compare_exchange_strong(expected, RequestState::committing)) continue;
      for (std::size_t j = 0; j < i; ++j) group[j].state->store(RequestState::taken);
      return false;
    }
    return true;
  };
  BatchResult result;
  auto answers = applier_.decide(requests, *features_, result, commit_all);
  if (answers.empty()) {  // rolled back: the group's events were added to their keys' histories only
    for (const auto& r : group) features_->forget(r.event);
    return false;
  }
  if (features_->keys_held() > kMaxKeysHeld) features_->forget();
  result.applied_origins.clear();  // decided before the bank recorded them: no end-to-end latency to tell
  count_in(metrics_, store::kInlineTopic, result);
  group_sizes_.Observe(static_cast<double>(group.size()));
  for (std::size_t i = 0; i < group.size(); ++i) group[i].answer.set_value(std::move(answers[i]));
  return true;
}

void DecisionDesk::answer_each_alone(std::vector<Request>& group) {
  for (std::size_t k = 0; k < group.size(); ++k) {
    std::vector<Request> alone;
    alone.push_back(std::move(group[k]));
    try {
      decide(std::move(alone));
    } catch (...) {  // not this request's fault: the others are not tried, and the failure goes on
      for (std::size_t rest = k + 1; rest < group.size(); ++rest) refuse(group[rest].answer, "the database failed");
      throw;
    }
  }
}

}  // namespace fraud::consumer
