// Faults the real broker cannot produce on demand, through librdkafka's mock cluster:
// offset commits that fail and a group coordinator that moves. The database is the real one;
// the batch loop runs in-process, exactly as fraud-consumer runs it.
#include <doctest/doctest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>

#include <thread>

#include "consumer/batch_loop.h"
#include "consumer/kafka_source.h"
#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

constexpr int16_t kOffsetCommit = 8;  // Kafka protocol ApiKey
constexpr int kPartitions = 4;

/// A three-broker mock cluster, owned by a producer that publishes into it.
class MockCluster {
 public:
  MockCluster() {
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    REQUIRE(rd_kafka_conf_set(conf, "test.mock.num.brokers", "3", error, sizeof error) == RD_KAFKA_CONF_OK);
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    REQUIRE_MESSAGE(producer_, error);
    cluster_ = rd_kafka_handle_mock_cluster(producer_);
    REQUIRE(cluster_);
  }
  ~MockCluster() { rd_kafka_destroy(producer_); }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  std::string bootstrap() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }
  rd_kafka_mock_cluster_t* get() { return cluster_; }

  void produce(const std::string& topic, const std::vector<OutgoingRecord>& records) {
    for (const auto& r : records)
      REQUIRE(rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
                                RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR);
    REQUIRE(rd_kafka_flush(producer_, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  }

 private:
  rd_kafka_t* producer_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

std::vector<OutgoingRecord> transactions(int from, int to) {
  std::vector<OutgoingRecord> out;
  for (int i = from; i < to; ++i) out.push_back(transaction_event(i, i % 10 == 0 ? "12500.00" : "10.00"));
  for (int i = from; i < to; i += 5) out.push_back(out[static_cast<std::size_t>(i - from)]);  // redeliveries
  return out;
}

/// Fails the next `n` offset commits with errors a real cluster gives during trouble.
void fail_offset_commits(MockCluster& mock, int n) {
  std::vector<rd_kafka_resp_err_t> errors;
  for (int i = 0; i < n; ++i)
    errors.push_back(i % 3 == 0   ? RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE
                     : i % 3 == 1 ? RD_KAFKA_RESP_ERR_NOT_COORDINATOR
                                  : RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  rd_kafka_mock_push_request_errors_array(mock.get(), kOffsetCommit, errors.size(), errors.data());
}

std::int64_t stored_offsets(TestDatabase& db, const std::string& topic) {
  return db.count("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE topic = '" + topic + "'");
}

}  // namespace

TEST_CASE("failing offset commits and a moving coordinator neither lose nor repeat an event") {
  TestDatabase db(Services::from_environment());
  MockCluster mock;
  auto topic = unique_name("transactions"), group = unique_name("fraud");
  REQUIRE(rd_kafka_mock_topic_create(mock.get(), topic.c_str(), kPartitions, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);

  auto rules = std::make_shared<const rules::RuleSet>(
      rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml"));
  consumer::BatchApplier store(db.service_url(), group, "mock-replica", {});
  prometheus::Registry registry;
  consumer::ServiceMetrics metrics(registry);
  consumer::HealthState health;
  consumer::BatchLoop loop({.max_records = 100, .max_wait_ms = 20}, {}, {.days = 0, .days_ahead = 7}, store, rules,
                           metrics, health);
  consumer::KafkaSource source({mock.bootstrap(), group, {topic}, {{"session.timeout.ms", "6000"}}}, "mock-replica",
                               loop, metrics, health);
  std::atomic<bool> stop{false};
  std::string loop_error;
  std::thread polling([&] {
    try {
      loop.run(source, stop);
    } catch (const std::exception& e) {
      loop_error = e.what();
    }
  });

  fail_offset_commits(mock, 30);
  mock.produce(topic, transactions(0, 2000));
  CHECK(wait_until(60s, [&] { return stored_offsets(db, topic) == 2400; }));

  // The group's coordinator moves to another broker while offsets keep failing.
  REQUIRE(rd_kafka_mock_coordinator_set(mock.get(), "group", group.c_str(), 2) == RD_KAFKA_RESP_ERR_NO_ERROR);
  fail_offset_commits(mock, 30);
  mock.produce(topic, transactions(2000, 3000));
  CHECK(wait_until(60s, [&] { return stored_offsets(db, topic) == 3600; }));

  stop = true;
  polling.join();
  source.close();
  CHECK(loop_error.empty());
  CHECK(db.count("SELECT count(*) FROM processed_events") == 3000);
  CHECK(db.count("SELECT count(DISTINCT event_id) FROM processed_events") == 3000);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == 300);
  CHECK(loop.counters().duplicates == 600);
  CHECK(metrics.records(topic, "processed").Value() == 3000);
}

TEST_CASE("a replica stopped between joining the group and its first assignment exits 0") {
  // librdkafka 2.0.2's cooperative-sticky assignor has no state until the first SyncGroup
  // response, and aborted when the consumer was closed before it (its issue #4312). The mock
  // coordinator holds that response back, so the stop lands exactly in the window.
  constexpr int16_t kSyncGroup = 14;
  auto services = Services::from_environment();
  TestDatabase db(services);
  MockCluster mock;
  auto topic = unique_name("transactions"), group = unique_name("fraud");
  REQUIRE(rd_kafka_mock_topic_create(mock.get(), topic.c_str(), kPartitions, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
  REQUIRE(rd_kafka_mock_coordinator_set(mock.get(), "group", group.c_str(), 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    REQUIRE(rd_kafka_mock_broker_push_request_error_rtts(mock.get(), 1, kSyncGroup, 1, RD_KAFKA_RESP_ERR_NO_ERROR,
                                                         10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    auto env = replica_environment(services, db.service_url(), topic, group);
    env["FRAUD_KAFKA_BOOTSTRAP_SERVERS"] = mock.bootstrap();
    auto log = "/tmp/" + unique_name("joining") + ".log";
    ChildProcess replica({FRAUD_CONSUMER_BINARY, "run"}, env, log);
    // The SyncGroup request has arrived (its delay popped from the stack): the replica has a
    // member id and waits for its first assignment.
    REQUIRE(wait_until(30s, [&] {
      std::size_t pending = 1;
      rd_kafka_mock_broker_error_stack_cnt(mock.get(), 1, kSyncGroup, &pending);
      return pending == 0;
    }));
    auto status = replica.stop(SIGTERM, 45s);
    CHECK_MESSAGE(status == 0, "exit status " << status.value_or(-1) << "; its log: " << log);
  }
}
