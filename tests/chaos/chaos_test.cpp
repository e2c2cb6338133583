// Exactly-once effects while the cluster misbehaves: replicas killed at any moment (and
// deliberately between the database commit and the Kafka commit), a frozen zombie replica
// (restarts_test.cpp restarts PostgreSQL and Kafka). Each test checks against what the topic really
// holds: every event applied once at its first delivery, every poison record rejected, every
// partition's offset at its end.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <regex>
#include <thread>

#include "tests/chaos/cluster.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

/// The value of `key` in the last "consumer stopped" log line, or -1.
long stopped_counter(const std::string& log, const std::string& key) {
  std::smatch m;
  std::regex pattern("\"msg\":\"consumer stopped\".*\"" + key + "\":\"([0-9]+)\"");
  std::string last;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), pattern); it != std::sregex_iterator(); ++it)
    last = (*it)[1];
  return last.empty() ? -1 : std::stol(last);
}

}  // namespace

TEST_CASE("replicas killed with SIGKILL at any moment lose nothing and apply nothing twice") {
  constexpr int kEvents = 200000, kWaves = 10;
  Cluster cluster(6, "kill");
  std::mt19937 random(20261127);
  for (std::size_t slot = 0; slot < 3; ++slot) cluster.start(slot);

  // A replica found dead must have died of the failpoint (SIGKILL, and its log says so): a
  // replica that crashed of a bug is evidence of nothing but the bug.
  int failpoint_deaths = 0;
  auto died_of_failpoint = [&](std::size_t slot) {
    if (cluster.replica(slot).running()) return;
    ++failpoint_deaths;
    auto status = cluster.replica(slot).exit_status().value_or(-1);
    CHECK_MESSAGE(status == 128 + SIGKILL,
                  "replica " << slot << " ended with status " << status << ", not the failpoint");
  };
  for (int w = 0; w < kWaves; ++w) {
    cluster.produce(wave(w * kEvents / kWaves, (w + 1) * kEvents / kWaves, 10, 997));
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 1500));  // a random moment in the wave
    auto slot = random() % cluster.size();
    died_of_failpoint(slot);
    cluster.replica(slot).stop(SIGKILL, 10s);
    // Every other restart arms the failpoint: that process kills itself right after one of
    // its first database commits and before the Kafka commit, the window most at risk.
    std::map<std::string, std::string> extra;
    if (w % 2 == 0) extra["FRAUD_FAILPOINT_KILL_AFTER_COMMITS"] = std::to_string(1 + random() % 5);
    cluster.start(slot, extra);
    // The next wave reaches the new replica only once it holds partitions.
    CHECK(wait_until(30s, [&] { return cluster.holds_partitions(slot); }));
  }
  // Replace every replica by one without a failpoint, then let the group drain the topic.
  for (std::size_t slot = 0; slot < cluster.size(); ++slot) {
    died_of_failpoint(slot);
    cluster.replica(slot).stop(SIGKILL, 10s);
    cluster.start(slot);
  }
  MESSAGE(failpoint_deaths << " replicas killed themselves between a database and a Kafka commit");
  CHECK(failpoint_deaths >= 1);  // the commit-to-commit window was really exercised
  long markers = 0;
  for (std::size_t slot = 0; slot < cluster.size(); ++slot) {
    auto log = read_file(cluster.log_path(slot));
    for (auto at = log.find("failpoint: killing"); at != std::string::npos; at = log.find("failpoint: killing", at + 1))
      ++markers;
  }
  CHECK(markers >= failpoint_deaths);  // each death left its line (a kill can race a marker)
  CHECK(wait_until(240s, [&] { return cluster.caught_up(); }));
  cluster.stop_all();

  cluster.check_exactly_once();
  CHECK(cluster.db().count("SELECT count(*) FROM processed_events") == kEvents);
  CHECK(cluster.db().count("SELECT count(*) FROM fraud_alerts") == large_events_below(kEvents));
  CHECK(cluster.db().count("SELECT count(*) FROM outbox WHERE event_type = 'FraudAlertRaised'") ==
        large_events_below(kEvents));
}

namespace {

/// True once process `pid` is stopped (state T in /proc/PID/stat).
bool is_stopped(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto after_name = stat.rfind(')');
  return after_name != std::string::npos && stat.size() > after_name + 2 && stat[after_name + 2] == 'T';
}

}  // namespace

TEST_CASE("a frozen zombie replica writes nothing for the partitions it lost") {
  Cluster cluster(4, "zombie");
  // Armed by creating the file, the zombie stops itself with a batch in hand, before its
  // database transaction; woken, it goes straight to the database (consumer/main.cpp).
  auto armed = cluster.log_path(0) + ".stop-before-apply";
  auto& zombie = cluster.start(0, {{"FRAUD_FAILPOINT_STOP_BEFORE_APPLY", armed}});
  cluster.start(1);
  REQUIRE(wait_until(60s, [&] { return cluster.owners_are(2); }));
  cluster.produce(wave(0, 20000, 10));
  REQUIRE(wait_until(60s, [&] { return cluster.caught_up(); }));

  std::ofstream{armed}.flush();  // arms the failpoint
  cluster.produce(wave(20000, 40000, 10));
  REQUIRE(wait_until(60s, [&] { return is_stopped(zombie.pid()); }));
  // Past its session timeout the other replica takes the zombie's partitions and applies
  // everything from the offsets in the database, including the batch the zombie holds.
  CHECK(wait_until(90s, [&] { return cluster.caught_up(); }));
  auto offsets = [&] {
    std::string all;
    for (const auto& row : cluster.db().query("SELECT partition, next_offset FROM consumer_offsets WHERE topic = '" +
                                              cluster.topic() + "' ORDER BY partition"))
      all += std::string(row[0].c_str()) + ":" + row[1].c_str() + " ";
    return all;
  };
  auto before_wake = offsets();
  kill(zombie.pid(), SIGCONT);
  // Awake, the zombie writes its batch after its successor committed: the fence must refuse
  // it, and the offsets its successor committed stay as they were (a claim changes only the
  // epoch and the owner; no new events arrive meanwhile).
  REQUIRE(
      wait_until(30s, [&] { return read_file(cluster.log_path(0)).find("failpoint: resumed") != std::string::npos; }));
  CHECK(wait_until(60s, [&] { return read_file(cluster.log_path(0)).find("batch fenced") != std::string::npos; }));
  CHECK(offsets() == before_wake);
  cluster.produce(wave(40000, 50000, 10));
  CHECK(wait_until(90s, [&] { return cluster.caught_up(); }));
  cluster.stop_all();
  CHECK(stopped_counter(read_file(cluster.log_path(0)), "fenced_batches") >= 1);

  cluster.check_exactly_once();
  CHECK(cluster.db().count("SELECT count(*) FROM processed_events") == 50000);
  CHECK(cluster.db().count("SELECT count(*) FROM fraud_alerts") == large_events_below(50000));
}

namespace {

/// Starts replicas 0 and 1 of `cluster` on the feature test rules and waits until both own
/// partitions; returns the environment that names the rules.
std::map<std::string, std::string> start_two_with_feature_rules(Cluster& cluster) {
  auto rules =
      std::map<std::string, std::string>{{"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/tests/data/feature_rules.yaml"}};
  cluster.start(0, rules);
  cluster.start(1, rules);
  REQUIRE(wait_until(60s, [&] { return cluster.owners_are(2); }));
  return rules;
}

}  // namespace

TEST_CASE("feature values stay exact across SIGKILL and rebalances") {
  constexpr int kAccounts = 20, kPerAccount = 150;
  Cluster cluster(4, "features");
  auto rules = start_two_with_feature_rules(cluster);
  // Each account's n-th event (by event time, all within one hour) must see tx_count_1h = n.
  std::vector<OutgoingRecord> wave_of[3];
  for (int n = 0; n < kPerAccount; ++n)
    for (int a = 0; a < kAccounts; ++a) {
      char when[32];
      std::snprintf(when, sizeof when, "2026-11-27T09:%02d:%02dZ", n / 60, n % 60);
      auto record = transaction_event(n * kAccounts + a, "10.00", when, "acc-" + std::to_string(a));
      wave_of[n * 3 / kPerAccount].push_back(record);
      if (n % 10 == 0) wave_of[n * 3 / kPerAccount].push_back(record);  // a redelivery
    }
  cluster.produce(wave_of[0]);
  cluster.replica(0).stop(SIGKILL, 10s);  // mid-stream, state in memory lost
  cluster.start(0, rules);
  cluster.produce(wave_of[1]);
  auto with_failpoint = rules;
  with_failpoint["FRAUD_FAILPOINT_KILL_AFTER_COMMITS"] = "2";
  cluster.replica(1).stop(SIGKILL, 10s);
  cluster.start(1, with_failpoint);  // dies between a database commit and a Kafka commit
  cluster.produce(wave_of[2]);
  REQUIRE(wait_until(60s, [&] { return !cluster.replica(1).running(); }));
  cluster.start(1, rules);
  CHECK(wait_until(120s, [&] { return cluster.caught_up(); }));
  cluster.stop_all();

  cluster.check_exactly_once();
  CHECK(cluster.db().count("SELECT count(*) FROM fraud_alerts") == kAccounts * kPerAccount);
  CHECK(miscounted_alerts(cluster.db()) == 0);
}

TEST_CASE("copies applied first on another partition leave every account's counts exact across SIGKILL") {
  constexpr int kAccounts = 20, kPerAccount = 60;
  Cluster cluster(4, "rekeyed");
  auto rules = start_two_with_feature_rules(cluster);
  // Each account's n-th event (by event time, all within one hour) must see tx_count_1h = n,
  // in commit order, which these phases make event-time order per account.
  auto event = [](int n, int a) {
    char when[32];
    std::snprintf(when, sizeof when, "2026-11-27T09:%02d:%02dZ", n / 60, n % 60);
    return transaction_event(n * kAccounts + a, "10.00", when, "acc-" + std::to_string(a));
  };
  auto phase = [&](int from, int to, bool rekeyed) {
    std::vector<OutgoingRecord> records;
    for (int n = from; n < to; ++n)
      for (int a = 0; a < kAccounts; ++a) {
        auto record = event(n, a);
        if (rekeyed) record.key = "relay-rekeyed-" + std::to_string(a);  // another partition, mostly
        records.push_back(record);
      }
    cluster.produce(records);
    REQUIRE(wait_until(120s, [&] { return cluster.caught_up(); }));
  };
  phase(0, 10, false);  // every account's owner caches its history...
  phase(10, 20, true);  // ...which copies applied first on other partitions extend...
  cluster.replica(0).stop(SIGKILL, 10s);
  cluster.start(0, rules);
  phase(10, 40, false);  // ...and the originals arrive after them: duplicates, then new events
  cluster.replica(1).stop(SIGKILL, 10s);
  cluster.start(1, rules);
  phase(40, kPerAccount, false);
  cluster.stop_all();

  CHECK(cluster.db().count("SELECT count(*) FROM processed_events") == kAccounts * kPerAccount);
  CHECK(cluster.db().count("SELECT count(*) FROM fraud_alerts") == kAccounts * kPerAccount);
  CHECK(miscounted_alerts(cluster.db()) == 0);
}
