#pragma once
// The inline door's group commit: requests of POST /v1/decisions wait in one queue, and one
// thread applies all those waiting in one PostgreSQL transaction, as a batch of the stream
// (consumer/batch_applier.h), so the commit's cost is paid once per group, not per request;
// while a group commits, the next one gathers. The thread has its own connection and its own
// feature state: to the store it is one more replica, kept exact by the key versions.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "consumer/batch_applier.h"
#include "consumer/metrics.h"
#include "events/event.h"
#include "rules/features.h"
#include "rules/rule_set.h"

namespace fraud::consumer {

/// Why a request has no answer from the rules: the caller answers with its fallback.
struct DeskUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A request the database refused for what the event holds (a data exception): a client's error.
struct DeskRefused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class DecisionDesk {
 public:
  /// `max_group`: the most requests one transaction takes.
  DecisionDesk(std::string postgres_url, std::string group_id, std::string owner, store::OutboxTopics topics,
               std::shared_ptr<const rules::RuleSet> rules, ServiceMetrics& metrics, std::size_t max_group);
  ~DecisionDesk();  ///< answers what waits with DeskUnavailable, then stops the thread
  DecisionDesk(const DecisionDesk&) = delete;
  DecisionDesk& operator=(const DecisionDesk&) = delete;

  /// Queues `event` (its body digest `digest`) to be applied and decided. The future holds the
  /// answer once its group committed, or DeskUnavailable (the database failed, or `deadline`
  /// passed before its group began: it is then not applied, and the stream applies it later),
  /// or DeskRefused.
  std::future<InlineAnswer> submit(events::Event event, std::int64_t digest,
                                   std::chrono::steady_clock::time_point deadline);

  /// The rules the next group decides with (a reload); their feature state starts afresh.
  void set_rules(std::shared_ptr<const rules::RuleSet> rules);

  /// Requests queued and not yet taken by a group.
  std::size_t waiting() const;

 private:
  struct Request {
    events::Event event;
    std::int64_t digest;
    std::chrono::steady_clock::time_point deadline;
    std::promise<InlineAnswer> answer;
  };
  void run();
  std::vector<Request> take_group();
  void decide(std::vector<Request>& group);
  void answer_each_alone(std::vector<Request>& group);

  BatchApplier applier_;
  ServiceMetrics& metrics_;
  std::size_t max_group_;
  std::unique_ptr<rules::FeatureEngine> features_;  ///< the thread's own

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Request> queue_;
  std::shared_ptr<const rules::RuleSet> new_rules_;  ///< set by a reload, taken by the thread
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fraud::consumer
