#pragma once
// The tests that start, kill and compare fraud-consumer replicas share one Cluster.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "tests/support/integration.h"

namespace fraud::testing {

using namespace std::chrono_literals;

/// Events `from`..`to`-1 (every 50th one large) with `duplicate_every`-th ones delivered
/// again right after the wave, and a poison record every `poison_every`.
inline std::vector<OutgoingRecord> wave(int from, int to, int duplicate_every, int poison_every = 0) {
  std::vector<OutgoingRecord> out, again;
  for (int i = from; i < to; ++i) {
    out.push_back(transaction_event(i, i % 50 == 0 ? "12500.00" : "42.10"));
    if (duplicate_every && i % duplicate_every == 0) again.push_back(out.back());
    if (poison_every && i % poison_every == 0) out.push_back({out.back().key, "{\"event_id\":\"poison", {}});
  }
  out.insert(out.end(), again.begin(), again.end());
  return out;
}

inline std::int64_t large_events_below(int n) { return (n + 49) / 50; }

/// A topic, a database, and a group of replicas consuming the one into the other.
class Cluster {
 public:
  Cluster(int partitions, const std::string& name)
      : services_(Services::from_environment()), db_(services_), partitions_(partitions),
        topic_(unique_name("transactions")), group_(unique_name("fraud")), log_dir_("/tmp/" + unique_name(name)) {
    create_topic(services_.bootstrap_servers, topic_, partitions_);
    std::filesystem::create_directories(log_dir_);
  }

  std::map<std::string, std::string> env(std::map<std::string, std::string> extra = {}) const {
    std::map<std::string, std::string> chaos = {{"FRAUD_KAFKA_PROPERTIES_HEARTBEAT_INTERVAL_MS", "500"},
                                                {"FRAUD_BATCH_MAX_RECORDS", "500"},
                                                {"FRAUD_BATCH_MAX_WAIT_MS", "20"}};
    for (const auto& [name, value] : extra) chaos[name] = value;  // `extra` wins
    return replica_environment(services_, db_.service_url(), topic_, group_, chaos);
  }

  /// Starts replica `slot` (replacing one stopped there before), logging to its own file.
  ChildProcess& start(std::size_t slot, std::map<std::string, std::string> extra = {}) {
    if (replicas_.size() <= slot) replicas_.resize(slot + 1);
    replicas_[slot] = std::make_unique<ChildProcess>(std::vector<std::string>{FRAUD_CONSUMER_BINARY, "run"}, env(extra),
                                                     log_path(slot));
    return *replicas_[slot];
  }

  ChildProcess& replica(std::size_t slot) { return *replicas_.at(slot); }
  std::size_t size() const { return replicas_.size(); }
  std::string log_path(std::size_t slot) const { return log_dir_ + "/replica-" + std::to_string(slot) + ".log"; }

  void produce(const std::vector<OutgoingRecord>& records) {
    fraud::testing::produce(services_.bootstrap_servers, topic_, records);
  }
  bool caught_up() { return offsets_at_end(db_, services_, topic_, partitions_); }
  /// Every record applied once (check_applied_exactly_once), and every flagged event in its
  /// account's one case once.
  void check_exactly_once() {
    check_applied_exactly_once(db_, services_, topic_, partitions_);
    CHECK(miscased_accounts(db_) == 0);
  }
  TestDatabase& db() { return db_; }
  const std::string& topic() const { return topic_; }

  /// True once replica `slot` holds at least one partition.
  bool holds_partitions(std::size_t slot) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    auto owner = std::string(host) + "-" + std::to_string(replica(slot).pid());
    return db_.count("SELECT count(*) FROM consumer_offsets WHERE topic = '" + topic_ + "' AND owner = '" + owner +
                     "'") > 0;
  }

  /// True once `n` distinct replicas hold partitions of the topic.
  bool owners_are(int n) {
    return db_.count("SELECT count(DISTINCT owner) FROM consumer_offsets WHERE topic = '" + topic_ + "'") == n;
  }

  /// Stops every replica with SIGTERM; each must leave cleanly.
  void stop_all() {
    for (auto& r : replicas_)
      if (r) CHECK(r->stop(SIGTERM, 40s) == 0);
  }

 private:
  Services services_;
  TestDatabase db_;
  int partitions_;
  std::string topic_, group_, log_dir_;
  std::vector<std::unique_ptr<ChildProcess>> replicas_;
};

}  // namespace fraud::testing
