#pragma once
// The inline door's group commit: requests of POST /v1/decisions wait in one queue, and one
// thread applies all those waiting in one PostgreSQL transaction, as a batch of the stream
// (consumer/batch_applier.h), so the commit's cost is paid once per group, not per request;
// while a group commits, the next one gathers, and it starts at least a group interval after
// the last one started (so that at a steady load more requests share a transaction:
// docs/DECISIONS.md). The thread has its own connection and its own feature state: to the
// store it is one more replica, kept exact by the key versions.
//
// The decision stored is the decision answered. A caller whose deadline passes abandons its
// request (and answers with the fallback) unless the request's group is already committing:
// then it waits for that commit's answer. A group with an abandoned request is rolled back
// before its commit and applied again without it, so an abandoned request is never applied
// by the door: the stream applies it when the outbox publishes it.

#include <atomic>
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

#include <prometheus/histogram.h>

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

/// Where a request is: waiting in the queue, taken into a group, committing, or abandoned by
/// its caller. Only the desk moves a request to committing, and only from taken.
enum class RequestState { waiting, taken, committing, abandoned };

/// A caller's hold on its request: the answer to come, and the state it may abandon.
struct DeskTicket {
  std::future<InlineAnswer> answer;
  std::shared_ptr<std::atomic<RequestState>> state;

  /// Abandons the request unless its group is committing. True: it will not be applied by the
  /// door (answer with the fallback). False: its commit is under way; wait for `answer`.
  bool abandon() const;
};

class DecisionDesk {
 public:
  /// `max_group`: the most requests one transaction takes; `group_interval`: the least time
  /// between the starts of two groups, unless `max_group` requests wait; `group_sizes`
  /// observes each committed group's size.
  DecisionDesk(std::string postgres_url, std::string group_id, std::string owner, store::OutboxTopics topics,
               std::shared_ptr<const rules::RuleSet> rules, ServiceMetrics& metrics, std::size_t max_group,
               std::chrono::microseconds group_interval, prometheus::Histogram& group_sizes);
  ~DecisionDesk();  ///< answers what waits with DeskUnavailable, then stops the thread
  DecisionDesk(const DecisionDesk&) = delete;
  DecisionDesk& operator=(const DecisionDesk&) = delete;

  /// Queues `event` (its body digest `digest`) to be applied and decided. The ticket's answer
  /// holds the decision once its group committed, or DeskUnavailable (the database failed, the
  /// request was abandoned, or the desk is stopping: it was not applied), or DeskRefused.
  DeskTicket submit(events::Event event, std::int64_t digest);

  /// The rules the next group decides with (a reload); their feature state starts afresh.
  void set_rules(std::shared_ptr<const rules::RuleSet> rules);

 private:
  struct Request {
    events::Event event;
    std::int64_t digest;
    std::promise<InlineAnswer> answer;
    std::shared_ptr<std::atomic<RequestState>> state;
  };
  void run();
  std::vector<Request> take_group();
  void decide(std::vector<Request> group);
  bool try_group(std::vector<Request>& group);
  void answer_each_alone(std::vector<Request>& group);

  BatchApplier applier_;
  ServiceMetrics& metrics_;
  std::size_t max_group_;
  std::chrono::microseconds group_interval_;
  std::chrono::steady_clock::time_point last_group_{};  ///< when the last group was taken
  prometheus::Histogram& group_sizes_;
  std::unique_ptr<rules::FeatureEngine> features_;  ///< the thread's own

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Request> queue_;
  std::shared_ptr<const rules::RuleSet> new_rules_;  ///< set by a reload, taken by the thread
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fraud::consumer
