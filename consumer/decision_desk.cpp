#include "consumer/decision_desk.h"

#include <chrono>

#include "events/time.h"
#include "ops/backoff.h"
#include "ops/log.h"
#include "postgres/database_error.h"

namespace fraud::consumer {

namespace log = ops::log;
using Clock = std::chrono::steady_clock;

DecisionDesk::DecisionDesk(std::string postgres_url, std::string group_id, std::string owner,
                           store::OutboxTopics topics, std::shared_ptr<const rules::RuleSet> rules,
                           ServiceMetrics& metrics, std::size_t max_group)
    : applier_(std::move(postgres_url), std::move(group_id), std::move(owner), std::move(topics)), metrics_(metrics),
      max_group_(max_group), features_(std::make_unique<rules::FeatureEngine>(std::move(rules))) {
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

std::future<InlineAnswer> DecisionDesk::submit(events::Event event, std::int64_t digest, Clock::time_point deadline) {
  Request request{std::move(event), digest, deadline, {}};
  auto answer = request.answer.get_future();
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(request));
  }
  wake_.notify_one();
  return answer;
}

void DecisionDesk::set_rules(std::shared_ptr<const rules::RuleSet> rules) {
  std::lock_guard lock(mutex_);
  new_rules_ = std::move(rules);
}

std::size_t DecisionDesk::waiting() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

namespace {

void refuse(std::promise<InlineAnswer>& answer, const std::string& why) {
  answer.set_exception(std::make_exception_ptr(DeskUnavailable(why)));
}

}  // namespace

// The requests waiting now, up to max_group_, once there are any; none when stopping. A
// request whose deadline passed while it waited is not applied: its caller has answered with
// the fallback already, and the stream applies it when the outbox publishes it.
std::vector<DecisionDesk::Request> DecisionDesk::take_group() {
  std::vector<Request> group;
  std::shared_ptr<const rules::RuleSet> rules;
  {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      for (auto& r : queue_) refuse(r.answer, "the service is stopping");
      queue_.clear();
      return group;
    }
    auto now = Clock::now();
    while (!queue_.empty() && group.size() < max_group_) {
      if (queue_.front().deadline <= now) refuse(queue_.front().answer, "its deadline passed before it was taken");
      else group.push_back(std::move(queue_.front()));
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
      continue;  // every request taken had passed its deadline
    }
    // A database that just failed is not asked again at once: the callers get their fallback now.
    if (Clock::now() < retry_at) {
      for (auto& r : group) refuse(r.answer, "the database failed; the inline door retries it shortly");
      continue;
    }
    try {
      decide(group);
      backoff.reset();
    } catch (const postgres::DatabaseError& e) {
      metrics_.database_retries(e.reason).Increment();
      retry_at = Clock::now() + backoff.fail();
      log::warn("inline decisions failed; answering with the fallback",
                {{"reason", e.reason}, {"error", e.what()}, {"requests", std::to_string(group.size())}});
      for (auto& r : group) refuse(r.answer, std::string("the database failed: ") + e.reason);
    }
  }
}

// One transaction for the group. A data exception is some event's fault: each request is then
// tried alone, and the one the database refuses is told so.
void DecisionDesk::decide(std::vector<Request>& group) {
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
  BatchResult result;
  std::vector<InlineAnswer> answers;
  try {
    answers = applier_.decide(requests, *features_, result);
  } catch (const postgres::DatabaseError& e) {
    features_->forget();
    if (!e.record_fault) throw;
    if (group.size() == 1) {
      group[0].answer.set_exception(std::make_exception_ptr(DeskRefused(e.what())));
      return;
    }
    return answer_each_alone(group);
  } catch (...) {
    features_->forget();
    throw;
  }
  if (features_->keys_held() > kMaxKeysHeld) features_->forget();
  count_in(metrics_, store::kInlineTopic, result);
  for (std::size_t i = 0; i < group.size(); ++i) group[i].answer.set_value(std::move(answers[i]));
}

void DecisionDesk::answer_each_alone(std::vector<Request>& group) {
  for (auto& request : group) {
    std::vector<Request> alone;
    alone.push_back(std::move(request));
    try {
      decide(alone);
    } catch (const postgres::DatabaseError& e) {
      refuse(alone[0].answer, std::string("the database failed: ") + e.reason);
    }
  }
}

}  // namespace fraud::consumer
